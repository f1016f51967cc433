//! Arithmetic in launch annotations: `n=1<<24 grid=ceil(n/block) bytes=3*n*4 flops=2*n`.
//! Numbers are f64 (byte and FLOP counts pass 2^32); integer-only operators (`<<`, `>>`, `%`)
//! check that their operands are whole. Names come from the caller (earlier keys, `block`).

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("unknown name `{0}`")]
    UnknownName(String),
    #[error("unexpected `{found}` at {at} in `{text}`")]
    Unexpected { found: String, at: usize, text: String },
    #[error("`{0}` needs whole numbers")]
    NotWhole(String),
    #[error("division by zero in `{0}`")]
    DivisionByZero(String),
    #[error("unknown function `{0}` (known: ceil, floor, min, max, cdiv, sqrt)")]
    UnknownFunction(String),
}

/// Evaluates `text` with the given variables.
pub fn eval(text: &str, vars: &HashMap<String, f64>) -> Result<f64, ExprError> {
    let mut parser = Parser { text, bytes: text.as_bytes(), pos: 0, vars };
    let value = parser.shift()?;
    parser.skip_space();
    if parser.pos < parser.bytes.len() {
        return Err(parser.unexpected());
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    vars: &'a HashMap<String, f64>,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.pos..].starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn unexpected(&self) -> ExprError {
        let found = self.text[self.pos..].chars().next().map_or("end".to_string(), |c| c.to_string());
        ExprError::Unexpected { found, at: self.pos, text: self.text.to_string() }
    }

    /// Lowest precedence, as in C: shifts bind looser than + and -.
    fn shift(&mut self) -> Result<f64, ExprError> {
        let mut value = self.sum()?;
        loop {
            let left = if self.eat("<<") {
                true
            } else if self.eat(">>") {
                false
            } else {
                return Ok(value);
            };
            let amount = self.sum()?;
            let (a, b) = (whole(value, "<<")?, whole(amount, "<<")?);
            value = if left { (a << b.clamp(0, 63)) as f64 } else { (a >> b.clamp(0, 63)) as f64 };
        }
    }

    fn sum(&mut self) -> Result<f64, ExprError> {
        let mut value = self.product()?;
        loop {
            if self.eat("+") {
                value += self.product()?;
            } else if self.eat("-") {
                value -= self.product()?;
            } else {
                return Ok(value);
            }
        }
    }

    fn product(&mut self) -> Result<f64, ExprError> {
        let mut value = self.unary()?;
        loop {
            self.skip_space();
            if self.text[self.pos..].starts_with("**") {
                self.pos += 2;
                value = value.powf(self.unary()?);
            } else if self.eat("*") {
                value *= self.unary()?;
            } else if self.eat("/") {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err(ExprError::DivisionByZero(self.text.to_string()));
                }
                value /= divisor;
            } else if self.eat("%") {
                let divisor = whole(self.unary()?, "%")?;
                if divisor == 0 {
                    return Err(ExprError::DivisionByZero(self.text.to_string()));
                }
                value = (whole(value, "%")? % divisor) as f64;
            } else {
                return Ok(value);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, ExprError> {
        if self.eat("-") {
            return Ok(-self.unary()?);
        }
        if self.eat("+") {
            return self.unary();
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<f64, ExprError> {
        self.skip_space();
        if self.eat("(") {
            let value = self.shift()?;
            if !self.eat(")") {
                return Err(self.unexpected());
            }
            return Ok(value);
        }
        let start = self.pos;
        let Some(&first) = self.bytes.get(self.pos) else { return Err(self.unexpected()) };
        if first.is_ascii_digit() || first == b'.' {
            while self.pos < self.bytes.len()
                && (self.bytes[self.pos].is_ascii_alphanumeric()
                    || self.bytes[self.pos] == b'.'
                    || self.bytes[self.pos] == b'_')
            {
                // An exponent's sign belongs to the number: 1e-3.
                let is_exponent_sign = matches!(self.bytes[self.pos], b'e' | b'E')
                    && matches!(self.bytes.get(self.pos + 1), Some(b'-' | b'+'))
                    && !self.text[start..self.pos].starts_with("0x");
                self.pos += if is_exponent_sign { 2 } else { 1 };
            }
            return number(&self.text[start..self.pos]).ok_or_else(|| {
                self.pos = start;
                self.unexpected()
            });
        }
        if first.is_ascii_alphabetic() || first == b'_' {
            while self.pos < self.bytes.len()
                && (self.bytes[self.pos].is_ascii_alphanumeric() || self.bytes[self.pos] == b'_')
            {
                self.pos += 1;
            }
            let name = &self.text[start..self.pos];
            if self.eat("(") {
                let mut args = vec![self.shift()?];
                while self.eat(",") {
                    args.push(self.shift()?);
                }
                if !self.eat(")") {
                    return Err(self.unexpected());
                }
                return call(name, &args);
            }
            return self.vars.get(name).copied().ok_or_else(|| ExprError::UnknownName(name.to_string()));
        }
        Err(self.unexpected())
    }
}

fn call(name: &str, args: &[f64]) -> Result<f64, ExprError> {
    Ok(match (name, args) {
        ("ceil", [x]) => x.ceil(),
        ("floor", [x]) => x.floor(),
        ("sqrt", [x]) => x.sqrt(),
        ("min", [first, rest @ ..]) => rest.iter().fold(*first, |a, b| a.min(*b)),
        ("max", [first, rest @ ..]) => rest.iter().fold(*first, |a, b| a.max(*b)),
        // Ceiling division, the usual grid computation.
        ("cdiv", [a, b]) if *b != 0.0 => (a / b).ceil(),
        ("cdiv", [_, _]) => return Err(ExprError::DivisionByZero("cdiv".into())),
        _ => return Err(ExprError::UnknownFunction(name.to_string())),
    })
}

/// `1024`, `0x400`, `1e6`, `2.5`, `16u`, `1L`.
fn number(text: &str) -> Option<f64> {
    let digits = text.trim_end_matches(['u', 'U', 'l', 'L', 'f', 'F']);
    let digits = digits.replace('_', "");
    if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    digits.parse().ok()
}

fn whole(value: f64, op: &str) -> Result<i64, ExprError> {
    if value.fract() == 0.0 && value.abs() < 9.0e18 {
        Ok(value as i64)
    } else {
        Err(ExprError::NotWhole(op.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, f64)]) -> HashMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn evaluates_what_launch_annotations_say() {
        let v = vars(&[("n", 16_777_216.0), ("block", 256.0)]);
        let cases = [
            ("1<<24", 16_777_216.0),
            ("ceil(n/block)", 65_536.0),
            ("cdiv(n + 1, block)", 65_537.0),
            ("3*n*4", 201_326_592.0),
            ("2 * n", 33_554_432.0),
            ("1 + 2 << 3", 24.0),
            ("-(4 - 10) % 4", 2.0),
            ("min(n, 1024, block)", 256.0),
            ("max(1, 2.5)", 2.5),
            ("0x100 + 1e3 + 16u", 1272.0),
            ("2**10", 1024.0),
            ("1e-3 * 1000", 1.0),
            ("  ( 7 )  ", 7.0),
        ];
        for (text, want) in cases {
            assert_eq!(eval(text, &v), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let v = vars(&[("n", 10.0)]);
        assert_eq!(eval("m * 2", &v), Err(ExprError::UnknownName("m".into())));
        assert!(matches!(eval("n +", &v), Err(ExprError::Unexpected { .. })));
        assert!(matches!(eval("(n", &v), Err(ExprError::Unexpected { .. })));
        assert!(matches!(eval("n / 0", &v), Err(ExprError::DivisionByZero(_))));
        assert!(matches!(eval("1.5 << 2", &v), Err(ExprError::NotWhole(_))));
        assert!(matches!(eval("log(n)", &v), Err(ExprError::UnknownFunction(_))));
        assert!(matches!(eval("", &v), Err(ExprError::Unexpected { .. })));
        assert!(matches!(eval("n n", &v), Err(ExprError::Unexpected { .. })));
        assert!(matches!(eval("ü", &v), Err(ExprError::Unexpected { .. })));
    }
}
