//! Parser for the `--pretty` message dump of swanctl: nested sections, `key = value`
//! pairs and `key = [ ... ]` lists, one item per line.

use crate::error::{HarnessError, Result};

/// One entry of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Value(String),
    List(Vec<String>),
    Section(Section),
}

/// An ordered list of named entries (names repeat for top-level messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub entries: Vec<(String, Node)>,
}

impl Section {
    /// The scalar value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.entries.iter().find_map(|(k, n)| match n {
            Node::Value(v) if k == key => Some(v.as_str()),
            _ => None,
        })
    }

    /// The list under `key`.
    pub fn list(&self, key: &str) -> Option<&[String]> {
        self.entries.iter().find_map(|(k, n)| match n {
            Node::List(v) if k == key => Some(v.as_slice()),
            _ => None,
        })
    }

    /// The subsection under `key`.
    pub fn section(&self, key: &str) -> Option<&Section> {
        self.sections().find_map(|(k, s)| (k == key).then_some(s))
    }

    /// All subsections with their names, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }
}

enum Open {
    Section(String, Section),
    List(String, Vec<String>),
}

/// Parses the whole output into a root section whose subsections are the messages
/// (e.g. several `list-sa event` and one `list-sas reply`).
pub fn parse(text: &str) -> Result<Section> {
    let what = "swanctl --pretty output";
    let mut stack: Vec<Open> = vec![Open::Section(String::new(), Section::default())];
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| HarnessError::parse(what, format!("line {}: {why}: {raw:?}", n + 1));
        if let Some(Open::List(_, items)) = stack.last_mut() {
            if line == "]" {
                let Some(Open::List(key, items)) = stack.pop() else {
                    return Err(bad("list stack broken"));
                };
                attach(&mut stack, key, Node::List(items))
                    .map_err(|_| bad("list outside a section"))?;
            } else {
                items.push(line.to_owned());
            }
            continue;
        }
        if line == "}" {
            if stack.len() < 2 {
                return Err(bad("unbalanced }"));
            }
            let Some(Open::Section(key, section)) = stack.pop() else {
                return Err(bad("} closes a list"));
            };
            attach(&mut stack, key, Node::Section(section))
                .map_err(|_| bad("section outside a section"))?;
        } else if let Some(name) = line.strip_suffix('{') {
            stack.push(Open::Section(name.trim().to_owned(), Section::default()));
        } else if let Some((key, value)) = line.split_once('=') {
            let (key, value) = (key.trim().to_owned(), value.trim());
            if value == "[" {
                stack.push(Open::List(key, Vec::new()));
            } else {
                attach(&mut stack, key, Node::Value(value.to_owned()))
                    .map_err(|_| bad("value outside a section"))?;
            }
        } else {
            return Err(bad("neither section, list nor key = value"));
        }
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(Open::Section(_, root)), true) => Ok(root),
        _ => Err(HarnessError::parse(
            what,
            "unterminated section or list at end of output",
        )),
    }
}

fn attach(stack: &mut [Open], key: String, node: Node) -> std::result::Result<(), ()> {
    match stack.last_mut() {
        Some(Open::Section(_, parent)) => {
            parent.entries.push((key, node));
            Ok(())
        }
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_values_and_lists() {
        let text = "msg one {\n  a = 1\n  sub {\n    b = x y\n    ts = [\n      0.0.0.0/0\n      10.0.0.0/8\n    ]\n  }\n}\nreply {\n}\n";
        let root = parse(text).unwrap();
        let names: Vec<_> = root.sections().map(|(k, _)| k).collect();
        assert_eq!(names, ["msg one", "reply"]);
        let one = root.section("msg one").unwrap();
        assert_eq!(one.value("a"), Some("1"));
        let sub = one.section("sub").unwrap();
        assert_eq!(sub.value("b"), Some("x y"));
        assert_eq!(sub.list("ts").unwrap(), ["0.0.0.0/0", "10.0.0.0/8"]);
        assert_eq!(sub.value("ts"), None);
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "a {\n",
            "}\n",
            "a {\n k = [\n x\n}\n",
            "a {\n what\n}\n",
            "k = v\n]\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("").unwrap(), Section::default());
    }
}
