//! Error enums whose messages are their variants' doc comments: one source for the text a
//! user reads and the text a developer reads, so the two cannot drift.
//!
//! ```ignore
//! error_enum! {
//!     /// A netlink failure.
//!     #[derive(Debug)]
//!     pub enum NetlinkError {
//!         /// cannot open the rtnetlink socket: {0}
//!         Open(io::Error),
//!         /// a dump did not finish in time
//!         Timeout,
//!     }
//! }
//! ```
//!
//! `{0}` is the variant's one field (a variant has at most one). `Display` writes the doc
//! comment without its leading space, the field's `Display` in place of `{0}`, and the enum
//! implements `std::error::Error`. No `format!`: a guest image pays for each variant only the
//! text of its message.

/// See the [module documentation](self).
macro_rules! error_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                #[doc = $msg:literal]
                $variant:ident $( ( $field:ty ) )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( #[doc = $msg] $variant $( ( $field ) )? ),*
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    $( error_enum!(@pattern $name $variant inner $( $field )?) =>
                        error_enum!(@message f $msg inner $( $field )?), )*
                }
            }
        }

        impl ::std::error::Error for $name {}
    };
    (@pattern $name:ident $variant:ident $inner:ident $field:ty) => { $name::$variant($inner) };
    (@pattern $name:ident $variant:ident $inner:ident) => { $name::$variant };
    (@message $f:ident $msg:literal $inner:ident $field:ty) => {
        $crate::error_enum::write_with_field($f, $msg, $inner)
    };
    (@message $f:ident $msg:literal $inner:ident) => {
        $f.write_str($crate::error_enum::doc_text($msg))
    };
}

pub(crate) use error_enum;

/// A doc comment's text without the space `///` leaves before it.
pub(crate) fn doc_text(s: &str) -> &str {
    s.strip_prefix(' ').unwrap_or(s)
}

/// Writes `msg` (a doc comment's text) with its field in place of the first `{0}`: no
/// allocation, and no formatting code instantiated per variant.
pub(crate) fn write_with_field(
    f: &mut std::fmt::Formatter<'_>,
    msg: &str,
    field: &dyn std::fmt::Display,
) -> std::fmt::Result {
    let msg = doc_text(msg);
    let at = msg.as_bytes().windows(3).position(|w| w == b"{0}");
    match at {
        Some(i) => {
            f.write_str(&msg[..i])?;
            field.fmt(f)?;
            f.write_str(&msg[i + 3..])
        }
        None => f.write_str(msg),
    }
}

#[cfg(test)]
mod tests {
    error_enum! {
        #[derive(Debug)]
        enum Sample {
            /// cannot open {0}
            Open(String),
            /// it took too long
            Timeout,
            /// {0} went away, for good
            Gone(u32),
        }
    }

    #[test]
    fn the_doc_comment_is_the_message() {
        assert_eq!(Sample::Open("x".into()).to_string(), "cannot open x");
        assert_eq!(Sample::Timeout.to_string(), "it took too long");
        assert_eq!(Sample::Gone(7).to_string(), "7 went away, for good");
        let _: &dyn std::error::Error = &Sample::Timeout;
    }
}
