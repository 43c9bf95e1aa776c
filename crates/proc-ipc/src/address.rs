//! [`Address`]: where a [`Listener`](crate::Listener) listens and a
//! [`Client`](crate::Client) connects, as Python's `multiprocessing.connection` names them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where a [`Listener`](crate::Listener) listens and a [`Client`](crate::Client) connects.
///
/// From a `&str` (or `String`): `"@name"` is the abstract Unix socket `name` (Python's
/// `'\0name'`), a string that parses as a [`SocketAddr`] (`"127.0.0.1:5000"`,
/// `"[::1]:5000"`) is that TCP address, and anything else is the path of a Unix socket
/// file. Host names are not resolved: `"localhost:5000"` is a path; give a resolved
/// [`SocketAddr`] instead.
///
/// ```
/// use proc_ipc::Address;
///
/// assert_eq!(Address::from("@service"), Address::Abstract(b"service".to_vec()));
/// assert_eq!(Address::from("127.0.0.1:80"), Address::Tcp("127.0.0.1:80".parse()?));
/// assert_eq!(Address::from("/tmp/x.sock"), Address::Unix("/tmp/x.sock".into()));
/// assert_eq!(Address::from("@service").to_string(), "@service");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A Unix socket file at this path (Python's `AF_UNIX` with a path). The empty path is
    /// what [`Listener::last_accepted`](crate::Listener::last_accepted) gives for a peer
    /// whose socket has no name, as Python gives `''`.
    Unix(PathBuf),
    /// A Unix socket in Linux's abstract namespace: no file, gone with its last user
    /// (Python's address `'\0name'`). The bytes are the name without the leading NUL.
    Abstract(Vec<u8>),
    /// A TCP address (Python's `AF_INET` / `AF_INET6`).
    Tcp(SocketAddr),
}

impl From<&str> for Address {
    fn from(address: &str) -> Self {
        if let Some(name) = address.strip_prefix('@') {
            Address::Abstract(name.as_bytes().to_vec())
        } else if let Ok(tcp) = address.parse::<SocketAddr>() {
            Address::Tcp(tcp)
        } else {
            Address::Unix(PathBuf::from(address))
        }
    }
}

impl From<String> for Address {
    fn from(address: String) -> Self {
        Address::from(address.as_str())
    }
}

impl From<&String> for Address {
    fn from(address: &String) -> Self {
        Address::from(address.as_str())
    }
}

impl From<&Path> for Address {
    fn from(path: &Path) -> Self {
        Address::Unix(path.to_path_buf())
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Self {
        Address::Unix(path)
    }
}

impl From<SocketAddr> for Address {
    fn from(address: SocketAddr) -> Self {
        Address::Tcp(address)
    }
}

impl From<&Address> for Address {
    fn from(address: &Address) -> Self {
        address.clone()
    }
}

impl fmt::Display for Address {
    /// The `&str` form: a path, `@name` (a name that is not UTF-8 shown lossily), or
    /// `host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Address::Tcp(address) => write!(f, "{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_parse_by_the_documented_rules() {
        assert_eq!(Address::from("@"), Address::Abstract(Vec::new()));
        assert_eq!(
            Address::from("[::1]:9"),
            Address::Tcp("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            Address::from("localhost:9"),
            Address::Unix("localhost:9".into())
        );
        assert_eq!(Address::from("rel.sock"), Address::Unix("rel.sock".into()));
        assert_eq!(
            Address::from(String::from("@a b")),
            Address::Abstract(b"a b".to_vec())
        );
    }
}
