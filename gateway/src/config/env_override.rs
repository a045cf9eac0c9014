//! Environment overrides: `VPNGW_CONNECTIONS__0__TUNNELS__1__PSK=...` sets
//! `connections[0].tunnels[1].psk`. Segments are separated by `__`, numbers index arrays.
//! The value keeps the type of the value it replaces (so a numeric PSK stays a string); a new
//! key gets a TOML literal if the value parses as one, else a string.

use super::error::Issues;
use toml::Value;

pub const PREFIX: &str = "VPNGW_";

/// Applies every `VPNGW_*` variable of `env` to `doc`, recording bad ones in `issues`.
pub fn apply(
    doc: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
    issues: &mut Issues,
) {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    // Deterministic order so errors and results do not depend on the environment's order.
    vars.sort();
    for (name, value) in vars {
        if let Err(reason) = apply_one(doc, &name, value) {
            issues.push(format!("env {name}"), reason);
        }
    }
}

fn apply_one(doc: &mut Value, name: &str, value: String) -> Result<(), String> {
    let path = name
        .get(PREFIX.len()..)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let segments: Vec<&str> = path.split("__").collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err("empty path".to_owned());
    };
    if last.is_empty() || parents.iter().any(|s| s.is_empty()) {
        return Err("empty path segment".to_owned());
    }
    let mut node = doc;
    for seg in parents {
        node = step(node, seg)?;
    }
    match node {
        Value::Table(table) => {
            let new = typed_like(table.get(*last), value)?;
            table.insert((*last).to_owned(), new);
            Ok(())
        }
        Value::Array(items) => {
            let slot = index(items, last)?;
            *slot = typed_like(Some(slot), value)?;
            Ok(())
        }
        _ => Err(format!("`{last}`: parent is not a table or array")),
    }
}

fn step<'a>(node: &'a mut Value, seg: &str) -> Result<&'a mut Value, String> {
    match node {
        Value::Table(table) => Ok(table
            .entry(seg.to_owned())
            .or_insert_with(|| Value::Table(Default::default()))),
        Value::Array(items) => index(items, seg),
        _ => Err(format!("`{seg}`: parent is not a table or array")),
    }
}

fn index<'a>(items: &'a mut [Value], seg: &str) -> Result<&'a mut Value, String> {
    let len = items.len();
    let i: usize = seg
        .parse()
        .map_err(|_| format!("`{seg}` is not an array index"))?;
    items
        .get_mut(i)
        .ok_or_else(|| format!("index {i} out of range (array has {len} items)"))
}

fn typed_like(old: Option<&Value>, value: String) -> Result<Value, String> {
    match old {
        Some(Value::String(_)) => Ok(Value::String(value)),
        Some(Value::Boolean(_)) => value
            .parse()
            .map(Value::Boolean)
            .map_err(|_| format!("`{value}` is not true/false")),
        Some(Value::Integer(_)) => value
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("`{value}` is not an integer")),
        Some(Value::Array(_)) => parse_literal(&value)
            .filter(Value::is_array)
            .ok_or_else(|| format!("`{value}` is not a TOML array")),
        Some(_) => Err("only strings, integers, booleans and arrays can be overridden".to_owned()),
        None => Ok(parse_literal(&value).unwrap_or(Value::String(value))),
    }
}

fn parse_literal(value: &str) -> Option<Value> {
    let doc: toml::Table = toml::from_str(&format!("v = {value}")).ok()?;
    doc.get("v").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        toml::from_str(
            r#"
            [local]
            address = "192.0.2.1"
            [[connections]]
            name = "c"
            [[connections.tunnels]]
            psk = "old"
            mtu = 1400
            "#,
        )
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_nested_fields_keeping_types() {
        let mut d = doc();
        let mut issues = Issues::default();
        apply(
            &mut d,
            env(&[
                ("VPNGW_CONNECTIONS__0__TUNNELS__0__PSK", "12345678"),
                ("VPNGW_CONNECTIONS__0__TUNNELS__0__MTU", "1420"),
                ("VPNGW_CONNECTIONS__0__TUNNELS__0__MSS_CLAMP", "false"),
                ("VPNGW_LOCAL__ID", "gw.example.com"),
                ("HOME", "/root"),
            ]),
            &mut issues,
        );
        assert!(issues.is_empty());
        let t = &d["connections"][0]["tunnels"][0];
        assert_eq!(t["psk"].as_str(), Some("12345678"));
        assert_eq!(t["mtu"].as_integer(), Some(1420));
        assert_eq!(t["mss_clamp"].as_bool(), Some(false));
        assert_eq!(d["local"]["id"].as_str(), Some("gw.example.com"));
    }

    #[test]
    fn bad_overrides_are_reported() {
        let mut d = doc();
        let mut issues = Issues::default();
        apply(
            &mut d,
            env(&[
                ("VPNGW_CONNECTIONS__5__NAME", "x"),
                ("VPNGW_CONNECTIONS__0__TUNNELS__0__MTU", "big"),
                ("VPNGW_LOCAL____ID", "x"),
            ]),
            &mut issues,
        );
        let v = issues.into_vec();
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v.iter().any(|i| i.reason.contains("out of range")));
        assert!(v.iter().any(|i| i.reason.contains("not an integer")));
        assert!(v.iter().any(|i| i.reason.contains("empty path segment")));
        assert!(v.iter().all(|i| i.path.starts_with("env VPNGW_")));
    }
}
