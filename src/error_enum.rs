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
//! comment without its leading space, and the enum implements `std::error::Error`.

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
        $f.write_str($crate::error_enum::doc_text(&format!($msg, $inner)))
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

#[cfg(test)]
mod tests {
    error_enum! {
        #[derive(Debug)]
        enum Sample {
            /// cannot open {0}
            Open(String),
            /// it took too long
            Timeout,
        }
    }

    #[test]
    fn the_doc_comment_is_the_message() {
        assert_eq!(Sample::Open("x".into()).to_string(), "cannot open x");
        assert_eq!(Sample::Timeout.to_string(), "it took too long");
        let _: &dyn std::error::Error = &Sample::Timeout;
    }
}
