//! [`Listener`] and [`Client`]: Python's `multiprocessing.connection.Listener` and
//! `Client`, speaking its protocol, so that either side may be a Python process.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{self, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::net::{TcpListener, TcpStream};

use crate::address::Address;
use crate::auth::{self, DEFAULT_HANDSHAKE_TIMEOUT, Side};
use crate::closing;
use crate::connection::Connection;
use crate::error::{Error, Result};

/// A socket that accepts connections from [`Client::connect`] or from Python's
/// `multiprocessing.connection.Client`, as Python's `Listener`.
///
/// The connections it gives speak Python's protocol: [`send_bytes`](Connection::send_bytes)
/// / [`recv_bytes`](Connection::recv_bytes) interoperate with Python's, whose frames are a
/// 4-byte big-endian length (or -1 and an 8-byte one), and no file descriptors travel, so
/// a value holding handles cannot be sent over them ([`Error::HandlesNotCarried`]).
///
/// With a key, every connection starts with Python's handshake (HMAC challenges both
/// ways, see [`Client::connect`]): a peer without the same key is refused with
/// [`Error::AuthenticationError`] before any payload is read, and one that does not
/// complete it within the handshake timeout ([`DEFAULT_HANDSHAKE_TIMEOUT`] unless set with
/// [`with_handshake_timeout`](Self::with_handshake_timeout)) with [`Error::TimedOut`]; the
/// listener goes on accepting either way. Without a key (`None`) no handshake happens:
/// Python's `Listener(authkey=None)` does the same (we have no process-wide key to fall
/// back on, so `None` always means no authentication).
///
/// A Unix socket file it made is removed when the listener is closed or dropped, if the
/// path still names that socket.
///
/// ```
/// use proc_ipc::{Address, Client, Listener};
///
/// let listener = Listener::bind(Address::Tcp("127.0.0.1:0".parse()?), Some(b"secret"))?;
/// let address = listener.address(); // the port the system chose
/// let client = std::thread::spawn(move || -> proc_ipc::Result<Vec<u8>> {
///     let conn = Client::connect(&address, Some(b"secret"))?;
///     conn.send_bytes(b"hello")?;
///     conn.recv_bytes()
/// });
/// let conn = listener.accept()?;
/// assert_eq!(conn.recv_bytes()?, b"hello");
/// conn.send_bytes(b"welcome")?;
/// assert_eq!(client.join().unwrap()?, b"welcome");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    authkey: Option<Vec<u8>>,
    handshake_timeout: Option<Duration>,
    last_accepted: Mutex<Option<Address>>,
    closed: AtomicBool,
    /// The socket file this listener made: its path and identity (device, inode).
    socket_file: Option<(PathBuf, u64, u64)>,
}

enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Listens at `address` (an [`Address`], or a `&str` by its rules: `"@name"`,
    /// `"host:port"`, or a path). A TCP address with port 0 gets a free port:
    /// [`address`](Self::address) tells which. `authkey`: `None::<&[u8]>` for no
    /// authentication.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("proc-ipc-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("listener.sock");
    /// let listener = proc_ipc::Listener::bind(path.as_path(), None::<&[u8]>)?;
    /// assert!(path.exists());
    /// drop(listener);
    /// assert!(!path.exists(), "the socket file goes with the listener");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind<K: AsRef<[u8]>>(address: impl Into<Address>, authkey: Option<K>) -> Result<Self> {
        let address = address.into();
        let bound = |e| Error::io("bind", e);
        let (socket, address, socket_file) = match address {
            Address::Unix(path) => {
                let listener = UnixListener::bind(&path).map_err(bound)?;
                let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io("stat", e))?;
                let file = Some((path.clone(), meta.dev(), meta.ino()));
                (Socket::Unix(listener), Address::Unix(path), file)
            }
            Address::Abstract(name) => {
                let addr = net::SocketAddr::from_abstract_name(&name).map_err(bound)?;
                let listener = UnixListener::bind_addr(&addr).map_err(bound)?;
                (Socket::Unix(listener), Address::Abstract(name), None)
            }
            Address::Tcp(addr) => {
                let listener = TcpListener::bind(addr).map_err(bound)?;
                let real = listener
                    .local_addr()
                    .map_err(|e| Error::io("getsockname", e))?;
                (Socket::Tcp(listener), Address::Tcp(real), None)
            }
        };
        Ok(Listener {
            socket,
            address,
            authkey: authkey.map(|k| k.as_ref().to_vec()),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            last_accepted: Mutex::new(None),
            closed: AtomicBool::new(false),
            socket_file,
        })
    }

    /// Sets how long the handshake of each accepted connection may take (`None`: without
    /// limit); [`DEFAULT_HANDSHAKE_TIMEOUT`] unless set. Each receive and send of the
    /// handshake has this limit; without a key there is no handshake.
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake's time limit (see [`with_handshake_timeout`](Self::with_handshake_timeout)).
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// Where this listener listens; for a TCP address with port 0, the port it got.
    pub fn address(&self) -> Address {
        self.address.clone()
    }

    /// Waits for a client, and returns the connection once the handshake (with a key)
    /// succeeded. A failed or stalled handshake is an error for that client only
    /// ([`Error::AuthenticationError`], [`Error::TimedOut`]): call `accept` again for the
    /// next.
    pub fn accept(&self) -> Result<Connection> {
        self.check_open()?;
        let accepted = match &self.socket {
            Socket::Unix(listener) => listener.accept().map(|(stream, peer)| {
                let peer = match (peer.as_pathname(), peer.as_abstract_name()) {
                    (_, Some(name)) => Address::Abstract(name.to_vec()),
                    (Some(path), None) => Address::Unix(path.to_path_buf()),
                    (None, None) => Address::Unix(PathBuf::new()),
                };
                (OwnedFd::from(stream), peer)
            }),
            Socket::Tcp(listener) => listener.accept().and_then(|(stream, peer)| {
                stream.set_nodelay(true)?;
                Ok((OwnedFd::from(stream), Address::Tcp(peer)))
            }),
        };
        let (socket, peer) = accepted.map_err(|e| {
            if self.closed.load(Ordering::Acquire) {
                Error::Closed { what: "listener" }
            } else {
                Error::io("accept", e)
            }
        })?;
        if let Ok(mut last) = self.last_accepted.lock() {
            *last = Some(peer);
        }
        let conn = Connection::python(socket);
        if let Some(key) = &self.authkey {
            auth::handshake(&conn, key, Side::Listener, self.handshake_timeout)?;
        }
        Ok(conn)
    }

    /// The address of the peer last accepted (`None` before the first): for a Unix peer
    /// whose socket has no name, as usual for clients, `Address::Unix` of the empty path
    /// (Python gives `''`).
    pub fn last_accepted(&self) -> Option<Address> {
        self.last_accepted.lock().ok().and_then(|last| last.clone())
    }

    /// Stops listening: the socket is closed, its file (if it made one and it is still
    /// there) removed, and every later [`accept`](Self::accept) is an [`Error::Closed`].
    /// Closing again does nothing. Connections already accepted are not affected.
    ///
    /// ```
    /// let listener = proc_ipc::Listener::bind("127.0.0.1:0", None::<&[u8]>)?;
    /// let address = listener.address();
    /// listener.close();
    /// listener.close();
    /// assert!(matches!(listener.accept(), Err(proc_ipc::Error::Closed { .. })));
    /// assert!(proc_ipc::Client::connect(&address, None::<&[u8]>).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // On failure the socket goes when the listener is dropped (as `Connection::close`).
            let _ = closing::release(self.as_fd());
            self.remove_socket_file();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed() {
            return Err(Error::Closed { what: "listener" });
        }
        Ok(())
    }

    /// Removes the socket file, unless another file took its path since.
    fn remove_socket_file(&self) {
        if let Some((path, dev, ino)) = &self.socket_file
            && let Ok(meta) = std::fs::symlink_metadata(path)
            && (meta.dev(), meta.ino()) == (*dev, *ino)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if !self.closed() {
            self.remove_socket_file();
        }
    }
}

impl AsFd for Listener {
    /// The listening socket, to wait for a client with `poll` (after
    /// [`close`](Listener::close), a descriptor of `/dev/null`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Unix(listener) => listener.as_fd(),
            Socket::Tcp(listener) => listener.as_fd(),
        }
    }
}

impl std::fmt::Debug for Listener {
    /// Shows no key, only whether there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.authkey.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("closed", &self.closed())
            .finish_non_exhaustive()
    }
}

/// Connects to a [`Listener`], or to Python's `multiprocessing.connection.Listener`, as
/// Python's `Client`.
///
/// ```
/// use proc_ipc::{Client, Error, Listener};
///
/// let listener = Listener::bind("@proc-ipc-doc-client", Some(b"right"))?;
/// let address = listener.address();
/// let server = std::thread::spawn(move || listener.accept().map(drop));
/// let refused = Client::connect(&address, Some(b"wrong"));
/// assert!(matches!(refused, Err(Error::AuthenticationError { .. })));
/// assert!(matches!(server.join().unwrap(), Err(Error::AuthenticationError { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum Client {}

impl Client {
    /// Connects to `address` and, with a key, completes the handshake (it answers the
    /// listener's challenge, then challenges it: Python's `answer_challenge` then
    /// `deliver_challenge`, in the `{sha256}` form, and answering Python 3.11's legacy
    /// HMAC-MD5 form too) within [`DEFAULT_HANDSHAKE_TIMEOUT`]. A listener without the same
    /// key gives [`Error::AuthenticationError`]; `None::<&[u8]>` connects without a
    /// handshake.
    pub fn connect<K: AsRef<[u8]>>(
        address: impl Into<Address>,
        authkey: Option<K>,
    ) -> Result<Connection> {
        Client::connect_with_timeout(address, authkey, Some(DEFAULT_HANDSHAKE_TIMEOUT))
    }

    /// As [`connect`](Self::connect), with the handshake's time limit (`None`: without).
    pub fn connect_with_timeout<K: AsRef<[u8]>>(
        address: impl Into<Address>,
        authkey: Option<K>,
        timeout: Option<Duration>,
    ) -> Result<Connection> {
        let connected = |e| Error::io("connect", e);
        let socket = match address.into() {
            Address::Unix(path) => OwnedFd::from(UnixStream::connect(path).map_err(connected)?),
            Address::Abstract(name) => {
                let addr = net::SocketAddr::from_abstract_name(&name).map_err(connected)?;
                OwnedFd::from(UnixStream::connect_addr(&addr).map_err(connected)?)
            }
            Address::Tcp(addr) => {
                let stream = TcpStream::connect(addr).map_err(connected)?;
                stream.set_nodelay(true).map_err(connected)?;
                OwnedFd::from(stream)
            }
        };
        let conn = Connection::python(socket);
        if let Some(key) = authkey {
            auth::handshake(&conn, key.as_ref(), Side::Client, timeout)?;
        }
        Ok(conn)
    }
}
