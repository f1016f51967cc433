//! Settings the client sends, in `initializationOptions` and `workspace/didChangeConfiguration`
//! (under a `tensorlens` key there). Unknown keys are ignored; a malformed value is logged and the
//! default kept, so a typo in a settings file never stops the server.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// Extra folders of catalog TOML files, on top of `.tensorlens/catalog` in each workspace folder.
    pub catalog_paths: Vec<PathBuf>,
    /// CUDA kernel analysis: arch, NVRTC / ptxas paths, include paths, flags, block size.
    #[serde(flatten)]
    pub kernels: crate::kernels::toolchain::Settings,
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
}
