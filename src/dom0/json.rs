//! `--json` output, written by hand (no serde: one small binary, no new crates).
//!
//! Every string comes from a guest, so escaping is the whole point: `"` and `\`, every control
//! character (`\n`, `\t`, ... and `\u00XX` for the rest, DEL included), and U+2028/U+2029
//! (valid JSON, but line terminators to JavaScript). Other non-ASCII UTF-8 is written as is;
//! values that were not UTF-8 were already replaced with U+FFFD when read.
//!
//! The schema: absent values are `null`, never left out, so a script can rely on every field
//! being there. Numbers are numbers only where the layout says they are and the value parsed.

use std::fmt::Write as _;

use super::report::{Address, Agent, GuestReport, Nic, Upper, UpperKind};

/// Appends `s` as a JSON string literal.
pub(super) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An object being written; the closing `}` comes when it is dropped.
pub(super) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(super) fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    pub(super) fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(':');
        self.out
    }

    pub(super) fn str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        let out = self.key(k);
        match v {
            Some(v) => string(out, v),
            None => out.push_str("null"),
        }
        self
    }

    pub(super) fn num(&mut self, k: &str, v: Option<u64>) -> &mut Self {
        let out = self.key(k);
        match v {
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => out.push_str("null"),
        }
        self
    }

    pub(super) fn bool(&mut self, k: &str, v: Option<bool>) -> &mut Self {
        let out = self.key(k);
        out.push_str(match v {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
        self
    }

    /// A nested object under `k`.
    pub(super) fn obj(&mut self, k: &str) -> Obj<'_> {
        Obj::new(self.key(k))
    }

    /// A nested array under `k`.
    pub(super) fn arr(&mut self, k: &str) -> Arr<'_> {
        Arr::new(self.key(k))
    }

    fn null(&mut self, k: &str) -> &mut Self {
        self.key(k).push_str("null");
        self
    }
}

impl Drop for Obj<'_> {
    fn drop(&mut self) {
        self.out.push('}');
    }
}

/// An array being written; the closing `]` comes when it is dropped.
pub(super) struct Arr<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Arr<'a> {
    pub(super) fn new(out: &'a mut String) -> Arr<'a> {
        out.push('[');
        Arr { out, first: true }
    }

    pub(super) fn next(&mut self) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out
    }

    pub(super) fn obj(&mut self) -> Obj<'_> {
        Obj::new(self.next())
    }

    pub(super) fn str(&mut self, v: &str) {
        string(self.next(), v);
    }
}

impl Drop for Arr<'_> {
    fn drop(&mut self) {
        self.out.push(']');
    }
}

fn addresses(o: &mut Obj<'_>, k: &str, list: &[Address]) {
    let mut a = o.arr(k);
    for addr in list {
        a.obj()
            .num("index", Some(u64::from(addr.index)))
            .str("address", Some(&addr.addr))
            .num("prefix", addr.prefix.map(u64::from));
    }
}

fn upper(o: &mut Obj<'_>, u: &Upper) {
    o.str(
        "kind",
        Some(match u.kind {
            UpperKind::Vlan => "vlan",
            UpperKind::Macvlan => "macvlan",
            UpperKind::Ipvlan => "ipvlan",
        }),
    )
    .str("id", Some(&u.id))
    .str("name", u.name.as_deref())
    .str("mac", u.mac.as_deref());
    addresses(o, "ipv4", &u.ipv4);
    addresses(o, "ipv6", &u.ipv6);
}

pub(super) fn nic(o: &mut Obj<'_>, n: &Nic) {
    o.str("kind", Some(n.kind.id()))
        .str("id", Some(&n.id))
        .str("path", Some(&n.path))
        .bool("reported", Some(n.reported))
        .str("name", n.name.as_deref())
        .str("mac", n.mac.as_deref())
        .bool("carrier", n.carrier)
        .str("bridge", n.bridge.as_deref())
        .str("bond", n.bond.as_deref())
        .str("bus", n.bus.as_deref())
        .str("location", n.location.as_deref())
        .str("host_location", n.host_location.as_deref())
        .str("vendor", n.vendor.as_deref())
        .str("product", n.product.as_deref())
        .str("driver", n.driver.as_deref())
        .str("compatible", n.compatible.as_deref())
        .str("topology", n.topology.as_deref())
        .str("link_kind", n.link_kind.as_deref());
    addresses(o, "ipv4", &n.ipv4);
    addresses(o, "ipv6", &n.ipv6);
    let mut a = o.arr("uppers");
    for u in &n.uppers {
        upper(&mut a.obj(), u);
    }
}

/// One guest as a JSON object.
pub fn report(out: &mut String, r: &GuestReport) {
    let mut o = Obj::new(out);
    o.num("domid", Some(u64::from(r.domid)))
        .str("name", r.name.as_deref())
        .str("uuid", r.uuid.as_deref());
    o.str("access", Some(r.access()));
    {
        let mut d = o.arr("denied");
        for p in &r.denied {
            d.str(p);
        }
    }
    {
        let mut a = o.obj("agent");
        match &r.agent {
            Agent::Xenbeacon { layout, version } => {
                a.str("kind", Some("xenbeacon"))
                    .str("layout", Some(layout))
                    .str("version", version.as_deref())
                    .null("pv_version");
            }
            Agent::XapiStyle { pv_version } => {
                a.str("kind", Some("xapi-style"))
                    .null("layout")
                    .null("version")
                    .str("pv_version", pv_version.as_deref());
            }
            Agent::None | Agent::NoAccess => {
                let kind = if r.agent == Agent::None {
                    "none"
                } else {
                    "no-access"
                };
                a.str("kind", Some(kind))
                    .null("layout")
                    .null("version")
                    .null("pv_version");
            }
        }
    }
    o.obj("os")
        .str("name", r.os.name.as_deref())
        .str("distro", r.os.distro.as_deref())
        .str("major", r.os.major.as_deref())
        .str("minor", r.os.minor.as_deref())
        .str("kernel", r.os.kernel.as_deref())
        .str("host_name", r.os.host_name.as_deref());
    o.str("stage", r.stage.as_deref())
        .bool("booted", Some(r.booted()))
        .str("booted_by", r.booted_by)
        .str("updated", r.updated.as_deref());
    o.obj("memory")
        .num("total_kb", r.memory.total_kb)
        .num("free_kb", r.memory.free_kb)
        .num("target_kb", r.memory.target_kb)
        .num("static_max_kb", r.memory.static_max_kb)
        .bool("feature_balloon", Some(r.memory.feature_balloon));
    match &r.balloon {
        Some(b) => {
            o.obj("balloon")
                .num("target_kb", b.target_kb)
                .num("current_kb", b.current_kb)
                .str("state", b.state.as_deref())
                .str("reason", b.reason.as_deref());
        }
        None => {
            o.null("balloon");
        }
    }
    {
        let mut a = o.arr("nics");
        for n in &r.nics {
            nic(&mut a.obj(), n);
        }
    }
    {
        let mut other = o.obj("other");
        for (k, v) in &r.other {
            other.str(k, Some(v));
        }
    }
    o.bool("truncated", Some(r.truncated));
}

#[cfg(test)]
mod tests {
    use super::super::tree::DomainTree;
    use super::*;

    fn lit(s: &str) -> String {
        let mut out = String::new();
        string(&mut out, s);
        out
    }

    #[test]
    fn escaping() {
        assert_eq!(lit("plain"), r#""plain""#);
        assert_eq!(lit(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lit("l1\nl2\r\t\u{8}\u{c}"), r#""l1\nl2\r\t\b\f""#);
        assert_eq!(lit("\0\u{1b}[2J\u{7f}"), r#""\u0000\u001b[2J\u007f""#);
        assert_eq!(lit("\u{85}"), r#""\u0085""#);
        assert_eq!(lit("a\u{2028}b\u{2029}"), r#""a\u2028b\u2029""#);
        assert_eq!(lit("Grüße 日本 🐧 \u{fffd}"), "\"Grüße 日本 🐧 \u{fffd}\"");
        assert_eq!(lit("</script>"), "\"</script>\"");
    }

    #[test]
    fn objects_and_arrays() {
        let mut out = String::new();
        {
            let mut o = Obj::new(&mut out);
            o.str("a", Some("x")).num("n", Some(7)).bool("b", None);
            o.obj("empty");
            {
                let mut arr = o.arr("list");
                arr.str("1");
                arr.obj().str("k\"", None);
            }
            o.null("z");
        }
        assert_eq!(
            out,
            r#"{"a":"x","n":7,"b":null,"empty":{},"list":["1",{"k\"":null}],"z":null}"#
        );
    }

    #[test]
    fn hostile_report_is_valid_json() {
        let mut t = DomainTree::new(3);
        t.set("name", "we\"b\\1\n")
            .set("data/os_name", "\u{1b}]0;pwned\u{7}Debian\u{2028}")
            .set("data/xenbeacon/layout", "1")
            .set("data/evil\"key", "v")
            .set("attr/vif/0/name", "eth\u{0}0")
            .set("attr/vif/0/ipv4/0", "10.0.0.2")
            .set("attr/vif/0/ipv4/0/prefix", "24");
        let r = GuestReport::parse(&t);
        let mut out = String::new();
        report(&mut out, &r);
        assert!(out.contains(r#""name":"we\"b\\1\n""#), "{out}");
        assert!(
            out.contains(r#""name":"\u001b]0;pwned\u0007Debian\u2028""#),
            "{out}"
        );
        assert!(out.contains(r#""data/evil\"key":"v""#), "{out}");
        assert!(out.contains(r#""name":"eth\u00000""#), "{out}");
        assert!(
            out.contains(r#""ipv4":[{"index":0,"address":"10.0.0.2","prefix":24}]"#),
            "{out}"
        );
        assert!(!out.chars().any(|c| c.is_control()), "{out}");
        check_balanced(&out);
    }

    /// Brackets balance outside strings and every string is closed: a minimal validity check.
    fn check_balanced(s: &str) {
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        for c in s.chars() {
            match (in_str, esc, c) {
                (true, true, _) => esc = false,
                (true, false, '\\') => esc = true,
                (true, false, '"') => in_str = false,
                (true, false, _) => {}
                (false, _, '"') => in_str = true,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => {
                    depth -= 1;
                    assert!(depth >= 0, "{s}");
                }
                _ => {}
            }
        }
        assert!(!in_str && depth == 0, "{s}");
    }
}
