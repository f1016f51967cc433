//! What each operator does to shapes, as data: `catalog/shapes/*.toml` names the catalog symbols
//! each rule applies to and the parameters it reads. The code knows the rule kinds, never an
//! operator by name.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The rule files, embedded; parsed once, on the first shape asked for.
const FILES: &[(&str, &str)] = &[
    ("torch.toml", include_str!("../../../catalog/shapes/torch.toml")),
    ("jax.toml", include_str!("../../../catalog/shapes/jax.toml")),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The sizes given, as separate ints or one sequence: `torch.zeros(4, 8)`, `jnp.ones((4, 8))`.
    Sizes,
    /// The operand's shape: elementwise functions, conversions, `zeros_like`, modules that keep
    /// their input's shape (`nn.ReLU()(x)`, `nn.LayerNorm(C)(x)`).
    Same,
    /// The operand's shape whatever the other arguments are: they are broadcast to it
    /// (`x.masked_fill(mask, v)`).
    Receiver,
    /// The operand reshaped to the sizes given, one of which may be `-1`.
    Reshape,
    /// Two dimensions swapped (`params`: the two).
    Transpose,
    /// Dimensions reordered (`params`: the order, as ints or one sequence).
    Permute,
    /// A dimension of size 1 inserted (`params`: where).
    Unsqueeze,
    /// A dimension of size 1 removed (`params`: which).
    Squeeze,
    /// Dimensions `start..=end` merged into one (`params`: start and end, with `defaults`).
    Flatten,
    /// A reduction over one dimension (`params`: the dimension and keep-dims flag); over all of
    /// them without it.
    Reduce,
    /// Matrix product with broadcast batch dimensions (`params`: the other operand).
    Matmul,
    /// Elementwise between two operands, broadcast (`params`: the other operand).
    Broadcast,
    /// Operands of one sequence joined along an existing dimension (`params`: the dimension).
    Concat,
    /// Operands of one sequence stacked along a new dimension (`params`: the dimension).
    Stack,
    /// A module called on its input, the last dimension mapped from one constructor parameter to
    /// another (`params`: in, out): `nn.Linear(in_features, out_features)`, Flax `nn.Dense(features)`.
    Linear,
    /// A lookup table called on indices: one dimension appended (`params`: the constructor
    /// parameter that gives it).
    Embedding,
    /// The sizes as one sequence, the last positional argument or the keyword `operand`
    /// (`torch.randint(0, 10, (4, 16))`).
    LastSizes,
    /// `arange(end)`, `arange(start, end)`, `arange(start, end, step)` (`params`: the three).
    Arange,
    /// Pieces of a given size along a dimension (`params`: the size, the dimension): every piece
    /// but the last has that size; the last has what is left.
    Split,
    /// A given number of pieces along a dimension (`params`: the count, the dimension), when the
    /// size divides.
    Chunk,
    /// Attention over query, key and value (`params`: key, value): the query's shape with the
    /// value's last dimension.
    Attention,
    /// A convolution module over `spatial` dimensions (`params`: in_channels, out_channels,
    /// kernel_size, stride, padding, dilation, as the constructor names them).
    Conv,
    /// A pooling module over `spatial` dimensions (`params`: kernel_size, stride, padding,
    /// dilation; the stride defaults to the kernel size).
    Pool,
    /// An adaptive pooling module: the last `spatial` dimensions become `output_size` (`params`).
    AdaptivePool,
    /// A module calling the modules it was built of, in order (`nn.Sequential(a, b, c)`).
    Sequential,
    /// A loss reduced to one number unless `reduction` (`params`) says `"none"`.
    Loss,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub kind: Kind,
    /// The parameters after the operand, in the order of the real signature (keyword names).
    #[serde(default)]
    pub params: Vec<String>,
    /// The operand's keyword name where a function takes it as an argument (`input`, `a`, `tensors`).
    #[serde(default = "default_operand")]
    pub operand: String,
    /// Defaults of `params` that are ints (`start_dim = 0`) or flags (`keepdim = false`, as 0).
    #[serde(default)]
    pub defaults: HashMap<String, i64>,
    /// How many spatial dimensions a convolution or pooling module works over (1, 2 or 3).
    #[serde(default)]
    pub spatial: usize,
    /// Catalog names the rule applies to: functions, methods (their receiver is the operand), and
    /// classes (for calling an instance; `params` then name constructor parameters).
    pub members: Vec<String>,
}

fn default_operand() -> String {
    "input".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

/// Every rule by member name, and the problems of the files (a test keeps them empty).
pub struct Rules {
    by_member: HashMap<String, usize>,
    rules: Vec<Rule>,
    pub problems: Vec<String>,
}

impl Rules {
    pub fn get(&self, member: &str) -> Option<&Rule> {
        self.by_member.get(member).map(|&idx| &self.rules[idx])
    }

    pub fn members(&self) -> impl Iterator<Item = (&str, &Rule)> {
        self.by_member.iter().map(|(name, &idx)| (name.as_str(), &self.rules[idx]))
    }

    fn parse(files: &[(&str, &str)]) -> Rules {
        let mut res = Rules { by_member: HashMap::new(), rules: Vec::new(), problems: Vec::new() };
        for (file, text) in files {
            let parsed: RulesFile = match toml::from_str(text) {
                Ok(parsed) => parsed,
                Err(err) => {
                    res.problems.push(format!("{file}: {}", err.message()));
                    continue;
                }
            };
            for rule in parsed.rule {
                let idx = res.rules.len();
                for member in &rule.members {
                    if res.by_member.insert(member.clone(), idx).is_some() {
                        res.problems.push(format!("{file}: {member} has two rules"));
                    }
                }
                res.rules.push(rule);
            }
        }
        res
    }
}

pub fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| Rules::parse(FILES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_files_parse_and_name_catalog_symbols() {
        let rules = rules();
        assert_eq!(rules.problems, Vec::<String>::new());
        let catalog = crate::catalog::Catalog::builtin();
        let mut missing: Vec<&str> = rules.members().map(|(m, _)| m).filter(|m| catalog.lookup(m).is_none()).collect();
        missing.sort();
        assert_eq!(missing, Vec::<&str>::new(), "shape rules for names the catalog does not have");
        // Rules are found by the catalog's own name of a symbol, never by an alias.
        let mut aliases: Vec<&str> = rules
            .members()
            .map(|(m, _)| m)
            .filter(|m| catalog.lookup(m).is_some_and(|idx| catalog.symbol(idx).name != *m))
            .collect();
        aliases.sort();
        assert_eq!(aliases, Vec::<&str>::new(), "shape rules under an alias");
    }
}
