//! A `GET /v1/deadlines` query string into a [`Query`], or an error naming the parameter.
//!
//! Parameters are form-encoded (`+` is a space, `%XX` a byte, the result UTF-8). Each
//! may be given once; an unknown one is refused, so that a misspelt filter does not
//! quietly match everything. Text filters must not be empty; `rule` must name a
//! configured rule.

use super::{Cursor, Query, Status, MAX_LIMIT};
use crate::core::rules::RuleSet;
use crate::core::time::Millis;

/// The parameters `GET /v1/deadlines` takes.
pub const NAMES: [&str; 8] = [
    "rule",
    "key",
    "seller_id",
    "marketplace",
    "status",
    "due_before",
    "limit",
    "after",
];

/// A bad parameter: the message names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

fn bad(name: &str, problem: impl std::fmt::Display) -> ParamError {
    ParamError(format!("{name}: {problem}"))
}

/// Parses the query string (without the `?`; `None` when there is none).
pub fn parse(query: Option<&str>, rules: &RuleSet) -> Result<Query, ParamError> {
    let mut q = Query::default();
    let mut given: Vec<String> = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name).map_err(|e| ParamError(format!("a parameter name {e}")))?;
        let value = decode(value).map_err(|e| bad(&name, e))?;
        if given.contains(&name) {
            return Err(bad(&name, "is given twice; give it once"));
        }
        set(&mut q, &name, value, rules)?;
        given.push(name);
    }
    Ok(q)
}

fn set(q: &mut Query, name: &str, value: String, rules: &RuleSet) -> Result<(), ParamError> {
    let f = &mut q.filter;
    match name {
        "rule" => f.rule = Some(rule_id(rules, &value).map_err(|e| bad(name, e))?),
        "key" => f.key = Some(text(name, value)?),
        "seller_id" => f.seller_id = Some(text(name, value)?),
        "marketplace" => f.marketplace = Some(text(name, value)?),
        "status" => {
            f.status = Some(status(&value).ok_or_else(|| {
                bad(
                    name,
                    format!("is `{}`; it must be `open` or `overdue`", shorten(&value)),
                )
            })?)
        }
        "due_before" => {
            f.due_before = Some(Millis::parse_rfc3339(&value).map_err(|e| bad(name, e.0))?)
        }
        "limit" => {
            q.limit = limit(&value).ok_or_else(|| {
                bad(
                    name,
                    format!(
                        "is `{}`; it must be a whole number from 1 to {MAX_LIMIT}",
                        shorten(&value)
                    ),
                )
            })?
        }
        "after" => {
            q.after = Some(Cursor::decode(&value).ok_or_else(|| {
                bad(
                    name,
                    "is not a cursor; pass the `next` of the previous page as it is",
                )
            })?)
        }
        other => {
            return Err(ParamError(format!(
                "{}: is not a parameter; the parameters are {}",
                shorten(other),
                NAMES.join(", ")
            )))
        }
    }
    Ok(())
}

/// The id of the configured rule `name`, or why not.
pub fn rule_id(rules: &RuleSet, name: &str) -> Result<u16, String> {
    rules
        .rules
        .iter()
        .position(|r| &*r.name == name)
        .map(|i| i as u16)
        .ok_or_else(|| {
            let names: Vec<&str> = rules.rules.iter().map(|r| &*r.name).collect();
            format!(
                "`{}` is not a configured rule; the rules are {}",
                shorten(name),
                names.join(", ")
            )
        })
}

fn text(name: &str, value: String) -> Result<String, ParamError> {
    if value.is_empty() {
        return Err(bad(name, "is empty; leave it out to match any"));
    }
    Ok(value)
}

fn status(value: &str) -> Option<Status> {
    match value {
        "open" => Some(Status::Open),
        "overdue" => Some(Status::Overdue),
        _ => None,
    }
}

fn limit(value: &str) -> Option<usize> {
    let n: usize = value.parse().ok()?;
    (1..=MAX_LIMIT).contains(&n).then_some(n)
}

/// Form decoding: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
fn decode(text: &str) -> Result<String, &'static str> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "is not UTF-8 once decoded")
}

/// At most 60 characters of a value, for a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_rules;

    fn err(query: &str) -> String {
        parse(Some(query), &load_rules(None).unwrap())
            .unwrap_err()
            .0
    }

    #[test]
    fn every_filter_is_read() {
        let rules = load_rules(None).unwrap();
        let q = parse(
            Some("rule=ship_by&key=o%2F1&seller_id=A+B&marketplace=NL&status=overdue&due_before=2026-11-20T10:00:00%2B01:00&limit=7"),
            &rules,
        )
        .unwrap();
        let f = &q.filter;
        assert_eq!(rules.rule(f.rule.unwrap()).name.as_ref(), "ship_by");
        assert_eq!(f.key.as_deref(), Some("o/1"));
        assert_eq!(f.seller_id.as_deref(), Some("A B"));
        assert_eq!(f.marketplace.as_deref(), Some("NL"));
        assert_eq!(f.status, Some(Status::Overdue));
        assert_eq!(
            f.due_before,
            Some(Millis::parse_rfc3339("2026-11-20T09:00:00Z").unwrap())
        );
        assert_eq!((q.limit, q.after), (7, None));
        assert_eq!(parse(None, &rules).unwrap(), Query::default());
        assert_eq!(Query::default().limit, 100);
    }

    #[test]
    fn a_bad_parameter_is_named() {
        for (query, named) in [
            (
                "rule=nope",
                "rule: `nope` is not a configured rule; the rules are customer_reply,",
            ),
            (
                "status=late",
                "status: is `late`; it must be `open` or `overdue`",
            ),
            (
                "due_before=tomorrow",
                "due_before: `tomorrow` is not an RFC 3339 timestamp",
            ),
            (
                "limit=0",
                "limit: is `0`; it must be a whole number from 1 to 10000",
            ),
            ("limit=10001", "limit: is `10001`"),
            ("limit=-1", "limit: is `-1`"),
            ("after=zzz", "after: is not a cursor"),
            ("key=", "key: is empty"),
            (
                "seller=A1",
                "seller: is not a parameter; the parameters are rule, key,",
            ),
            ("key=a&key=b", "key: is given twice"),
            ("key=%FF", "key: is not UTF-8"),
        ] {
            let e = err(query);
            assert!(e.starts_with(named), "{query}: {e}");
        }
    }

    #[test]
    fn the_largest_limit_is_accepted() {
        let q = parse(Some("limit=10000"), &load_rules(None).unwrap()).unwrap();
        assert_eq!(q.limit, MAX_LIMIT);
    }
}
