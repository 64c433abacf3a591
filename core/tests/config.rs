//! The config file and `RATEWALL_*` variables: one format, errors that say where.

use ratewall::config::{Config, ConfigError, FailMode};
use ratewall::http::HeaderSets;
use ratewall::keyed::Overflow;
use ratewall::policy::Algorithm;

const EXAMPLE: &str = r#"
[defaults]
algorithm = "fixed-window"
max_keys = 50_000
headers = "legacy, draft-8"
storage = "redis://127.0.0.1:6379/0"
fail_mode = "local"

[policies.login]
limits = "5/15min"
algorithm = "sliding-log"
overflow = "deny-new-keys"
fail_mode = "fail-closed"

[policies.api]
limits = "10 per second; 1000/day"
"#;

#[test]
fn the_documented_example_parses_and_builds() {
    let config = Config::from_toml_str(EXAMPLE).unwrap();
    assert_eq!(config.settings.algorithm, Algorithm::FixedWindow);
    assert_eq!(config.settings.max_keys, 50_000);
    assert_eq!(config.settings.storage, "redis://127.0.0.1:6379/0");
    assert_eq!(config.settings.fail_mode, FailMode::Local);
    assert_eq!(
        config.settings.headers,
        "legacy, draft-8".parse::<HeaderSets>().unwrap()
    );
    let names: Vec<&str> = config.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["api", "login"]);
    let policies = config.build().unwrap();
    let login = policies.get("login").unwrap();
    assert_eq!(login.options().algorithm, Algorithm::SlidingLog);
    assert_eq!(login.options().overflow, Overflow::DenyNewKeys);
    assert_eq!(policies.fail_mode("login"), FailMode::Closed);
    let api = policies.get("api").unwrap();
    assert_eq!(api.options().algorithm, Algorithm::FixedWindow);
    assert_eq!(api.rates().len(), 2);
    assert_eq!(policies.fail_mode("api"), FailMode::Local);
    for _ in 0..5 {
        assert!(login.check_at("alice", 0, 1).unwrap().allowed());
    }
    assert!(!login.check_at("alice", 1, 1).unwrap().allowed());
}

#[test]
fn rendering_round_trips() {
    let config = Config::from_toml_str(EXAMPLE).unwrap();
    let again = Config::from_toml_str(&config.to_toml()).unwrap();
    assert_eq!(config, again);
}

fn file_error(text: &str) -> String {
    match Config::from_toml_str(text).unwrap_err() {
        ConfigError::File(message) => message,
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn file_errors_name_the_line_and_what_is_valid() {
    let e = file_error("[policies.login]\nlimits = \"5/fortnight\"\n");
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("unit"), "{e}");

    let e = file_error("[policies.login]\nlimits = \"5/min\"\nalgoritm = \"gcra\"\n");
    assert!(e.contains("line 3") && e.contains("algoritm"), "{e}");

    let e = file_error("[defaults]\noverflow = \"drop\"\n");
    assert!(e.contains("line 2") && e.contains("deny-new-keys"), "{e}");

    let e = file_error("[defaults]\nstorage = \"memcached://x\"\n");
    assert!(e.contains("redis://"), "{e}");

    let e = file_error("[policies.x]\nalgorithm = \"gcra\"\n");
    assert!(e.contains("limits"), "{e}");

    let e = file_error("[policies.x]\nlimits = \"1/s\"\nburst = 0\n");
    assert!(e.contains("at least 1"), "{e}");

    let e = file_error("[defaults]\nheaders = \"draft-9\"\n");
    assert!(e.contains("draft-9"), "{e}");

    let e = file_error("[polices.x]\nlimits = \"1/s\"\n");
    assert!(e.contains("polices"), "{e}");
}

#[test]
fn policy_errors_name_the_policy() {
    let config =
        Config::from_toml_str("[policies.x]\nlimits = \"1/s; 2/min\"\nburst = 3\n").unwrap();
    let e = config.build().unwrap_err();
    assert!(matches!(e, ConfigError::Policy { ref name, .. } if name == "x"));
    assert!(e.to_string().contains("burst"), "{e}");
}

#[test]
fn tls_ca_file_is_read_rendered_and_overridden() {
    let config = Config::from_toml_str(
        "[defaults]\nstorage = \"rediss://cache.example:6380\"\ntls_ca_file = \"/etc/ssl/redis-ca.pem\"\n",
    )
    .unwrap();
    assert_eq!(
        config.settings.tls_ca_file.as_deref(),
        Some("/etc/ssl/redis-ca.pem")
    );
    assert_eq!(Config::from_toml_str(&config.to_toml()).unwrap(), config);
    assert_eq!(Config::default().settings.tls_ca_file, None);
    assert!(!Config::default().to_toml().contains("tls_ca_file"));

    let mut changed = config.clone();
    changed
        .apply_env([("RATEWALL_TLS_CA_FILE", "/run/secrets/ca.pem")])
        .unwrap();
    assert_eq!(
        changed.settings.tls_ca_file.as_deref(),
        Some("/run/secrets/ca.pem")
    );
    changed.apply_env([("RATEWALL_TLS_CA_FILE", "")]).unwrap();
    assert_eq!(
        changed.settings.tls_ca_file, None,
        "empty: the system's roots"
    );
}

#[test]
fn every_storage_url_form_is_accepted() {
    for url in [
        "memory://",
        "redis://h:1/0",
        "rediss://h:1",
        "redis+unix:///s.sock",
        "redis+cluster://a:1,b:2",
        "rediss+cluster://a:1,b:2",
    ] {
        let config = Config::from_toml_str(&format!("[defaults]\nstorage = {url:?}\n")).unwrap();
        assert_eq!(config.settings.storage, url);
    }
    let e = Config::from_toml_str("[defaults]\nstorage = \"redis+sentinel://h:1\"\n").unwrap_err();
    assert!(e.to_string().contains("rediss+cluster://"), "{e}");
}

#[test]
fn tls_client_certificate_files_are_read_rendered_and_overridden() {
    let config = Config::from_toml_str(
        "[defaults]\nstorage = \"rediss://cache.example:6380\"\ntls_cert_file = \"/etc/ssl/app.pem\"\ntls_key_file = \"/etc/ssl/app.key\"\n",
    )
    .unwrap();
    assert_eq!(
        config.settings.tls_cert_file.as_deref(),
        Some("/etc/ssl/app.pem")
    );
    assert_eq!(
        config.settings.tls_key_file.as_deref(),
        Some("/etc/ssl/app.key")
    );
    assert_eq!(Config::from_toml_str(&config.to_toml()).unwrap(), config);
    let default = Config::default();
    assert_eq!(
        (
            default.settings.tls_cert_file,
            default.settings.tls_key_file
        ),
        (None, None)
    );
    assert!(!Config::default().to_toml().contains("tls_cert_file"));

    let mut changed = config.clone();
    changed
        .apply_env([
            ("RATEWALL_TLS_CERT_FILE", "/run/secrets/app.pem"),
            ("RATEWALL_TLS_KEY_FILE", ""),
        ])
        .unwrap();
    assert_eq!(
        changed.settings.tls_cert_file.as_deref(),
        Some("/run/secrets/app.pem")
    );
    assert_eq!(changed.settings.tls_key_file, None, "empty: none");
}

#[test]
fn environment_overrides_the_file() {
    let mut config = Config::from_toml_str(EXAMPLE).unwrap();
    config
        .apply_env([
            ("PATH", "/usr/bin"),
            ("RATEWALL_STORAGE_URL", "memory://"),
            ("RATEWALL_FAIL_MODE", "fail-closed"),
            ("RATEWALL_POLICY_LOGIN_LIMITS", "3/hour"),
            ("RATEWALL_POLICY_API_ALGORITHM", "gcra"),
            ("RATEWALL_POLICY_SEARCH_V2_LIMITS", "30/min"),
            ("RATEWALL_POLICY_SEARCH_V2_MAX_KEYS", "1000"),
            ("RATEWALL_POLICY_LOGIN_FAIL_MODE", "local"),
            // The Redis backend's secret: known, and kept out of the configuration.
            ("RATEWALL_KEY_SECRET", "fleet secret"),
        ])
        .unwrap();
    assert!(!config.to_toml().contains("fleet secret"));
    assert_eq!(config.settings.storage, "memory://");
    assert_eq!(config.settings.fail_mode, FailMode::Closed);
    let login = config.policies.iter().find(|p| p.name == "login").unwrap();
    assert_eq!(login.rates[0].to_string(), "3/hour");
    assert_eq!(login.fail_mode, Some(FailMode::Local));
    let api = config.policies.iter().find(|p| p.name == "api").unwrap();
    assert_eq!(api.algorithm, Some(Algorithm::TokenBucket));
    let search = config
        .policies
        .iter()
        .find(|p| p.name == "search_v2")
        .unwrap();
    assert_eq!(search.max_keys, Some(1000));
    config.build().unwrap();
}

#[test]
fn environment_errors_name_the_variable_and_change_nothing_after_it() {
    let mut config = Config::default();
    let e = config
        .apply_env([("RATEWALL_STORAGE", "redis://x")])
        .unwrap_err();
    assert!(
        matches!(&e, ConfigError::Env { var, .. } if var == "RATEWALL_STORAGE"),
        "{e}"
    );
    assert!(e.to_string().contains("RATEWALL_STORAGE_URL"), "{e}");
    let e = config
        .apply_env([("RATEWALL_POLICY_LOGIN_LIMITS", "5 per fortnight")])
        .unwrap_err();
    assert!(
        e.to_string().contains("RATEWALL_POLICY_LOGIN_LIMITS"),
        "{e}"
    );
    let e = config
        .apply_env([("RATEWALL_POLICY_LOGIN_BURST", "-1")])
        .unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    let e = config
        .apply_env([("RATEWALL_FAIL_MODE", "sometimes")])
        .unwrap_err();
    assert!(e.to_string().contains("fail-open"), "{e}");
}

#[test]
fn files_are_read_and_missing_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("ratewall-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ratewall.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(Config::from_file(&path).unwrap().policies.len(), 2);
    std::fs::write(&path, "[defaults]\nbogus = 1\n").unwrap();
    let e = Config::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("ratewall.toml") && e.contains("bogus"), "{e}");
    let e = Config::from_file(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}
