//! The settings: what the client sends in `initializationOptions` and
//! `workspace/didChangeConfiguration` (under a `tensorlens` key there), read into [`Config`], and
//! [`SETTINGS`], the one table that names every key with its type, default and what it gives the
//! server access to. The editors' lists (VS Code's package.json and `src/settings.ts`, the Neovim
//! plugin and its help, the README) are checked against the table by the tests at the bottom.
//!
//! Unknown keys are ignored; a malformed value is logged and the default kept, so a typo in a
//! settings file never stops the server.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// Extra folders of catalog TOML files, on top of `.tensorlens/catalog` in each workspace folder.
    pub catalog_paths: Vec<PathBuf>,
    /// Inlay hints with the shapes of tensor assignments (on unless the user turns them off).
    pub shape_hints: bool,
    /// CUDA kernel analysis and timing: arch, NVRTC / ptxas paths, include paths, flags, block
    /// size, the timing worker, and whether the workspace is trusted.
    #[serde(flatten)]
    pub kernels: crate::kernels::toolchain::Settings,
}

impl Default for Config {
    fn default() -> Config {
        Config { catalog_paths: Vec::new(), shape_hints: true, kernels: Default::default() }
    }
}

impl Config {
    /// Whether a `didChangeConfiguration` payload says anything about tensorlens at all: clients
    /// send `{}` or `null` to mean "ask me", and that must not reset the settings to defaults.
    pub fn is_about_us(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Object(map) => !map.is_empty(),
            serde_json::Value::Null => false,
            _ => true,
        }
    }

    /// Reads the settings object; accepts it bare or wrapped in `{"tensorlens": {...}}`.
    pub fn from_json(value: &serde_json::Value) -> Config {
        let value = value.get("tensorlens").unwrap_or(value);
        if value.is_null() {
            return Config::default();
        }
        match serde_json::from_value(value.clone()) {
            Ok(config) => config,
            Err(err) => {
                tracing::warn!("ignoring malformed tensorlens settings: {err}");
                Config::default()
            }
        }
    }

    /// The settings that replace `self` after a `didChangeConfiguration` carrying `new`. An
    /// untrusted workspace stays untrusted until a client says otherwise in so many words: a
    /// payload without `workspaceTrusted` (a client that forgot it, or sends only what changed)
    /// must not lift the restriction.
    pub fn updated(&self, mut new: Config) -> Config {
        if new.kernels.workspace_trusted.is_none() {
            new.kernels.workspace_trusted = self.kernels.workspace_trusted;
        }
        new
    }
}

/// The JSON shape of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A string, or `null` for the default.
    String,
    /// A file or folder on this machine, or `null`; `~` is the user's to expand (Neovim does).
    Path,
    /// A list of strings.
    Strings,
    /// A list of files or folders.
    Paths,
    /// A whole number, or `null`.
    Integer,
    /// A number, or `null`.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `true`, `false`, or `null` for the default.
    OptionalBoolean,
    /// An object whose values are strings.
    StringMap,
}

impl Kind {
    /// In words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::String => "string or null",
            Kind::Path => "path or null",
            Kind::Strings => "list of strings",
            Kind::Paths => "list of paths",
            Kind::Integer => "integer or null",
            Kind::Number => "number or null",
            Kind::Boolean => "boolean",
            Kind::OptionalBoolean => "boolean or null",
            Kind::StringMap => "object of strings",
        }
    }

    /// The JSON schema `type` VS Code's package.json gives it.
    pub fn schema_type(self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Kind::String | Kind::Path => json!(["string", "null"]),
            Kind::Strings | Kind::Paths => json!("array"),
            Kind::Integer => json!(["integer", "null"]),
            Kind::Number => json!(["number", "null"]),
            Kind::Boolean => json!("boolean"),
            Kind::OptionalBoolean => json!(["boolean", "null"]),
            Kind::StringMap => json!("object"),
        }
    }

    /// Whether a names files or folders (editors expand `~` in them).
    pub fn is_path(self) -> bool {
        matches!(self, Kind::Path | Kind::Paths)
    }

    /// Whether `value` has this shape.
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        let strings = |v: &Value| v.as_array().is_some_and(|items| items.iter().all(Value::is_string));
        match self {
            Kind::String | Kind::Path => value.is_string() || value.is_null(),
            Kind::Strings | Kind::Paths => strings(value),
            Kind::Integer => value.is_u64() || value.is_null(),
            Kind::Number => value.is_number() || value.is_null(),
            Kind::Boolean => value.is_boolean(),
            Kind::OptionalBoolean => value.is_boolean() || value.is_null(),
            Kind::StringMap => value.as_object().is_some_and(|map| map.values().all(Value::is_string)),
        }
    }
}

/// What a setting lets its value make the server do beyond analysing text, which is what decides
/// whether an untrusted workspace may choose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Nothing beyond the analysis.
    None,
    /// The server reads the files it names (headers for NVRTC, catalog TOML). Nothing read is
    /// executed, and a workspace's own sources can already name files to include, so these stay
    /// open to untrusted workspaces.
    ReadsFiles,
    /// The server runs the program or loads the library it names. In an untrusted workspace only
    /// the user's own value counts (VS Code sends nothing else), and the server uses no such path
    /// inside the workspace.
    RunsProgram,
}

/// Who gives a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The user, in the editor's settings (VS Code's `tensorlens.<key>`, Neovim's `vim.g.tensorlens`).
    User,
    /// The editor works it out (from VS Code's workspace trust); never a workspace's to set, so
    /// it is no VS Code setting.
    Editor,
}

/// One key of the settings object.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The camelCase key.
    pub key: &'static str,
    pub kind: Kind,
    /// The value that means "not set", as JSON (what `Config::default()` holds).
    pub default: &'static str,
    /// A value a user could give, as JSON; the tests check that it changes the config.
    pub example: &'static str,
    pub access: Access,
    pub source: Source,
    /// One line, in our words; names the built-in default when `default` is `null`.
    pub description: &'static str,
}

impl Setting {
    /// The table row as JSON (`tensorlens settings --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "key": self.key,
            "kind": self.kind,
            "type": self.kind.describe(),
            "default": parse(self.default),
            "example": parse(self.example),
            "access": self.access,
            "source": self.source,
            "description": self.description,
        })
    }
}

/// Every key the server reads, in the order the editors list them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "catalogPaths",
        kind: Kind::Paths,
        default: "[]",
        example: r#"["/team/catalog"]"#,
        access: Access::ReadsFiles,
        source: Source::User,
        description: "folders of catalog TOML files to load besides each workspace's `.tensorlens/catalog`",
    },
    Setting {
        key: "shapeHints",
        kind: Kind::Boolean,
        default: "true",
        example: "false",
        access: Access::None,
        source: Source::User,
        description: "inlay hints with the shape of each tensor a line assigns (`false` turns them off)",
    },
    Setting {
        key: "cudaArch",
        kind: Kind::String,
        default: "null",
        example: r#""sm_80""#,
        access: Access::None,
        source: Source::User,
        description: "architecture to compile kernels for when no GPU is present (default `sm_90`)",
    },
    Setting {
        key: "nvrtcPath",
        kind: Kind::Path,
        default: "null",
        example: r#""/opt/cuda/lib64""#,
        access: Access::RunsProgram,
        source: Source::User,
        description: "`libnvrtc.so`, or a folder holding it, to load for compiling kernels",
    },
    Setting {
        key: "ptxasPath",
        kind: Kind::Path,
        default: "null",
        example: r#""/opt/cuda/bin/ptxas""#,
        access: Access::RunsProgram,
        source: Source::User,
        description: "the `ptxas` program, or its folder, run to read a kernel's resources",
    },
    Setting {
        key: "pythonPath",
        kind: Kind::Path,
        default: "null",
        example: r#""/home/me/venv/bin/python""#,
        access: Access::RunsProgram,
        source: Source::User,
        description: "the Python, with `triton` installed, that compiles Triton kernels (default: the active environment's, else `python3`)",
    },
    Setting {
        key: "cudaIncludePaths",
        kind: Kind::Paths,
        default: "[]",
        example: r#"["/opt/include"]"#,
        access: Access::ReadsFiles,
        source: Source::User,
        description: "extra include folders for kernels, searched before the CUDA headers",
    },
    Setting {
        key: "nvrtcFlags",
        kind: Kind::Strings,
        default: "[]",
        example: r#"["-DTILE=32"]"#,
        access: Access::None,
        source: Source::User,
        description: "extra NVRTC options, such as `-DTILE=32` or `--use_fast_math`",
    },
    Setting {
        key: "kernelBlockSize",
        kind: Kind::Integer,
        default: "null",
        example: "128",
        access: Access::None,
        source: Source::User,
        description: "block size for occupancy when no launch or annotation gives one (default 256)",
    },
    Setting {
        key: "kernelTemplateArgs",
        kind: Kind::StringMap,
        default: "{}",
        example: r#"{"scan": "float, 256"}"#,
        access: Access::None,
        source: Source::User,
        description: "template arguments per kernel name, for template kernels without an annotation",
    },
    Setting {
        key: "timingLauncher",
        kind: Kind::Strings,
        default: "[]",
        example: r#"["ssh", "gpu-host"]"#,
        access: Access::RunsProgram,
        source: Source::User,
        description: "command prefix that starts the timing worker on a GPU host (empty: this machine)",
    },
    Setting {
        key: "timingWorker",
        kind: Kind::String,
        default: "null",
        example: r#""/usr/local/bin/tensorlens""#,
        access: Access::RunsProgram,
        source: Source::User,
        description: "the tensorlens binary at the far end of `timingLauncher` (default `tensorlens`)",
    },
    Setting {
        key: "timingSeconds",
        kind: Kind::Number,
        default: "null",
        example: "30.0",
        access: Access::None,
        source: Source::User,
        description: "time budget of one measurement in seconds (default 15)",
    },
    Setting {
        key: "timingNoise",
        kind: Kind::Number,
        default: "null",
        example: "0.01",
        access: Access::None,
        source: Source::User,
        description: "relative standard deviation at which sampling stops (default 0.005)",
    },
    Setting {
        key: "timingHot",
        kind: Kind::Boolean,
        default: "false",
        example: "true",
        access: Access::None,
        source: Source::User,
        description: "keep L2 warm between timing samples instead of clearing it",
    },
    Setting {
        key: "timingEnabled",
        kind: Kind::OptionalBoolean,
        default: "null",
        example: "false",
        access: Access::None,
        source: Source::Editor,
        description: "`false` turns kernel timing off",
    },
    Setting {
        key: "workspaceTrusted",
        kind: Kind::OptionalBoolean,
        default: "null",
        example: "false",
        access: Access::None,
        source: Source::Editor,
        description: "`false`: no program or library inside the workspace is run or loaded, and timing is off",
    },
];

/// VS Code settings the extension reads itself and never sends to the server, and whether each
/// names a program (so that an untrusted workspace's value is ignored).
pub const VSCODE_CLIENT_ONLY: &[(&str, Access)] =
    &[("server.path", Access::RunsProgram), ("trace.server", Access::None)];

/// The keys users set (everything but what editors work out), in table order.
pub fn user_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().filter(|s| s.source == Source::User).map(|s| s.key)
}

/// The keys naming a program the server runs or a library it loads.
pub fn program_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().filter(|s| s.access == Access::RunsProgram).map(|s| s.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_settings_in_either_shape() {
        let want = Config { catalog_paths: vec![PathBuf::from("/team/catalog")], ..Config::default() };
        assert_eq!(Config::from_json(&json!({ "catalogPaths": ["/team/catalog"] })), want);
        assert_eq!(
            Config::from_json(&json!({ "tensorlens": { "catalogPaths": ["/team/catalog"], "other": 1 } })),
            want
        );
        assert_eq!(Config::from_json(&json!({ "catalogPaths": 3 })), Config::default());
        assert_eq!(Config::from_json(&serde_json::Value::Null), Config::default());
        assert!(!Config::is_about_us(&json!({})) && !Config::is_about_us(&serde_json::Value::Null));
        assert!(Config::is_about_us(&json!({ "tensorlens": {} })));
    }

    #[test]
    fn reads_kernel_settings_beside_the_others() {
        let config = Config::from_json(&json!({
            "catalogPaths": [], "cudaArch": "sm_80", "nvrtcPath": "/opt/cuda", "nvrtcFlags": ["-DTILE=32"],
            "kernelBlockSize": 128, "kernelTemplateArgs": { "scan": "float, 256" }
        }));
        assert_eq!(config.kernels.cuda_arch.as_deref(), Some("sm_80"));
        assert_eq!(config.kernels.nvrtc_path, Some(PathBuf::from("/opt/cuda")));
        assert_eq!(config.kernels.nvrtc_flags, ["-DTILE=32"]);
        assert_eq!(config.kernels.kernel_block_size, Some(128));
        assert_eq!(config.kernels.kernel_template_args["scan"], "float, 256");
        // A bad kernel setting keeps every default, as any malformed settings object does.
        assert_eq!(Config::from_json(&json!({ "kernelBlockSize": "big" })), Config::default());
    }

    #[test]
    fn an_untrusted_workspace_stays_untrusted_until_told_otherwise() {
        let untrusted = Config::from_json(&json!({ "workspaceTrusted": false }));
        assert!(!untrusted.kernels.trusted() && !untrusted.kernels.timing_allowed());
        let silent = untrusted.updated(Config::from_json(&json!({ "cudaArch": "sm_80" })));
        assert_eq!(
            (silent.kernels.workspace_trusted, silent.kernels.cuda_arch.as_deref()),
            (Some(false), Some("sm_80"))
        );
        let granted = untrusted.updated(Config::from_json(&json!({ "workspaceTrusted": true })));
        assert!(granted.kernels.trusted() && granted.kernels.timing_allowed());
        assert!(Config::default().kernels.trusted(), "plain clients that say nothing are trusted");
    }

    /// The table against the struct the server deserializes: the same keys, each default what
    /// `Config::default()` holds, and each example read into the config under its own key.
    #[test]
    fn the_table_names_exactly_what_the_server_reads() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let read: Vec<&str> = defaults.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        listed.sort_unstable();
        let mut unique = listed.clone();
        unique.dedup();
        assert_eq!(listed, unique, "a key is listed twice");
        let mut read_sorted = read.clone();
        read_sorted.sort_unstable();
        assert_eq!(read_sorted, listed, "the keys Config reads and the SETTINGS table differ");
        for setting in SETTINGS {
            let key = setting.key;
            let default: serde_json::Value = serde_json::from_str(setting.default).unwrap();
            let example: serde_json::Value = serde_json::from_str(setting.example).unwrap();
            assert_eq!(defaults[key], default, "{key}: the table's default is not Config::default()'s");
            assert!(
                setting.kind.accepts(&default) && setting.kind.accepts(&example),
                "{key}: not a {:?}",
                setting.kind
            );
            assert_ne!(example, default, "{key}: the example must differ from the default");
            let config = Config::from_json(&json!({ key: example.clone() }));
            assert_ne!(config, Config::default(), "{key}: the example was not read");
            assert_eq!(serde_json::to_value(&config).unwrap()[key], example, "{key} was read into another field");
            assert!(!setting.description.is_empty() && !setting.description.contains('\n'), "{key}: one line");
        }
    }

    fn repo_file(path: &str) -> String {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("{}: {err}", full.display()))
    }

    fn sorted(items: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut items: Vec<String> = items.into_iter().collect();
        items.sort_unstable();
        items
    }

    /// package.json: `tensorlens.<key>` for each user setting and the client-only ones, nothing
    /// else, each with the table's type and default; restricted in untrusted workspaces exactly
    /// when it names a program.
    #[test]
    fn vscode_package_json_matches_the_table() {
        let package: serde_json::Value = serde_json::from_str(&repo_file("editors/vscode/package.json")).unwrap();
        let properties = package["contributes"]["configuration"]["properties"].as_object().unwrap();
        let want = user_keys().chain(VSCODE_CLIENT_ONLY.iter().map(|(key, _)| *key));
        assert_eq!(
            sorted(properties.keys().cloned()),
            sorted(want.map(|key| format!("tensorlens.{key}"))),
            "package.json's settings and the table differ (client-only ones: VSCODE_CLIENT_ONLY)"
        );
        for setting in SETTINGS.iter().filter(|s| s.source == Source::User) {
            let property = &properties[&format!("tensorlens.{}", setting.key)];
            assert_eq!(property["type"], setting.kind.schema_type(), "{}: type", setting.key);
            let default: serde_json::Value = serde_json::from_str(setting.default).unwrap();
            assert_eq!(property["default"], default, "{}: default", setting.key);
            let items = match setting.kind {
                Kind::Strings | Kind::Paths => &property["items"]["type"],
                Kind::StringMap => &property["additionalProperties"]["type"],
                _ => &serde_json::Value::String("string".into()),
            };
            assert_eq!(items, "string", "{}: element type", setting.key);
        }
        let restricted = package["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"].as_array().unwrap();
        let programs = program_keys()
            .chain(VSCODE_CLIENT_ONLY.iter().filter(|(_, access)| *access == Access::RunsProgram).map(|(key, _)| *key));
        assert_eq!(
            sorted(restricted.iter().map(|v| v.as_str().unwrap().to_string())),
            sorted(programs.map(|key| format!("tensorlens.{key}"))),
            "restrictedConfigurations must be exactly the settings that name programs"
        );
    }

    /// The key lists the extension forwards, generated from the table (`UPDATE_EXPECT=1` writes
    /// the file again), and the extension using them rather than a list of its own.
    #[test]
    fn vscode_extension_lists_come_from_the_table() {
        let list = |keys: Vec<&str>| keys.iter().map(|key| format!("  \"{key}\",\n")).collect::<String>();
        let client_programs: Vec<&str> = VSCODE_CLIENT_ONLY
            .iter()
            .filter(|(_, access)| *access == Access::RunsProgram)
            .map(|(key, _)| *key)
            .collect();
        let generated = format!(
            "// Generated from the settings table in server/src/settings.rs, which a test there checks this file\n\
             // against; do not edit. After changing the table, `UPDATE_EXPECT=1 cargo test -p tensorlens --lib\n\
             // settings` writes it again.\n\
             \n\
             /** The server's settings that users set, as `tensorlens.<key>`; the extension sends them all. */\n\
             export const USER_SETTINGS: readonly string[] = [\n{}];\n\
             \n\
             /** The ones naming a program the server runs or a library it loads: in an untrusted workspace only\n \
             * the user's own (global) value is sent. */\n\
             export const PROGRAM_SETTINGS: readonly string[] = [\n{}];\n\
             \n\
             /** The extension's own settings that name a program it runs (the same rule applies). */\n\
             export const CLIENT_PROGRAM_SETTINGS: readonly string[] = [\n{}];\n",
            list(user_keys().collect()),
            list(program_keys().collect()),
            list(client_programs),
        );
        expect_test::expect_file!["../../editors/vscode/src/settings.ts"].assert_eq(&generated);
        let extension = repo_file("editors/vscode/src/extension.ts");
        assert!(extension.contains("from \"./settings\""), "extension.ts must take its key lists from settings.ts");
        for setting in SETTINGS.iter().filter(|s| s.source == Source::Editor) {
            assert!(
                extension.contains(&format!("settings.{} =", setting.key)),
                "extension.ts must send {}",
                setting.key
            );
        }
    }

    /// The Lua items of the table assigned to `name` in `lua` (a `{ ... }` block), quoted or as keys.
    fn lua_table(lua: &str, name: &str) -> Vec<String> {
        let start = lua.find(&format!("{name} = {{")).unwrap_or_else(|| panic!("no `{name} = {{` in config.lua"));
        let body = &lua[start + name.len() + 4..];
        let body = &body[..body.find('}').unwrap()];
        body.split(',')
            .map(|item| item.split('=').next().unwrap().trim().trim_matches('\'').to_string())
            .filter(|item| !item.is_empty())
            .collect()
    }

    /// The Neovim plugin sends every user setting, checks each (its `schema`), expands the paths,
    /// and its help names every key.
    #[test]
    fn neovim_plugin_and_help_name_every_setting() {
        let lua = repo_file("editors/neovim/lua/tensorlens/config.lua");
        let users = sorted(user_keys().map(String::from));
        assert_eq!(sorted(lua_table(&lua, "M.server_keys")), users, "config.lua's server_keys");
        let paths = SETTINGS.iter().filter(|s| s.source == Source::User && s.kind.is_path()).map(|s| s.key.to_string());
        assert_eq!(sorted(lua_table(&lua, "local path_keys")), sorted(paths), "config.lua's path_keys");
        let schema = &lua[lua.find("M.schema = {").unwrap()..];
        for key in user_keys() {
            assert!(schema.contains(&format!("\n  {key} = {{")), "config.lua's schema has no check for {key}");
            assert!(lua.contains(&format!("---@field {key}? ")), "config.lua's tensorlens.Config has no field {key}");
        }
        let help = repo_file("editors/neovim/doc/tensorlens.txt");
        for setting in SETTINGS {
            assert!(help.contains(&format!("`{}`", setting.key)), "tensorlens.txt does not mention `{}`", setting.key);
        }
    }

    /// README's settings table lists exactly the table's keys; the VS Code README names each
    /// `tensorlens.<key>`.
    #[test]
    fn readmes_list_every_setting() {
        let readme = repo_file("README.md");
        let start = readme.find("Settings (LSP `initializationOptions`").expect("README's settings table");
        let mut named = Vec::new();
        for row in readme[start..].lines().skip(1).skip_while(|l| l.is_empty()).take_while(|l| l.starts_with('|')) {
            let first = row.split('|').nth(1).unwrap_or_default();
            named.extend(first.split('`').skip(1).step_by(2).map(String::from));
        }
        assert_eq!(sorted(named), sorted(SETTINGS.iter().map(|s| s.key.to_string())), "README's settings table");
        let vscode = repo_file("editors/vscode/README.md");
        for key in user_keys().chain(VSCODE_CLIENT_ONLY.iter().map(|(key, _)| *key)) {
            assert!(vscode.contains(&format!("`tensorlens.{key}`")), "editors/vscode/README.md lacks tensorlens.{key}");
        }
    }
}
