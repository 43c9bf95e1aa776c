//! Listener and Client against a real Python (`python3`, whichever version the machine
//! has: 3.11 speaks the legacy HMAC-MD5 handshake, 3.12 and later the `{sha256}` one), and
//! against peers that do not play by the protocol.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use proc_ipc::{Address, Client, Error, Listener, pipe};

/// Python's side ends itself if the test leaves it waiting this long.
const PYTHON_PRELUDE: &str = "import signal, sys\nsignal.alarm(60)\n\
    from multiprocessing.connection import Listener, Client, AuthenticationError\n";

struct Python {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Python {
    /// Runs `script` (after the prelude) with `args` as `sys.argv[1:]`.
    fn run(script: &str, args: &[&str]) -> Python {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(format!("{PYTHON_PRELUDE}{script}"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is installed");
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Python { child, out }
    }

    /// The next line Python printed.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read Python's output");
        line.trim_end().to_owned()
    }

    /// Waits for Python to end successfully; returns the rest of what it printed.
    fn finish(mut self) -> String {
        let mut rest = String::new();
        self.out
            .read_to_string(&mut rest)
            .expect("read Python's output");
        let status = self.child.wait().expect("wait for python3");
        assert!(
            status.success(),
            "python3 failed ({status}); it printed {rest:?}"
        );
        rest
    }
}

/// Patterned bytes, so that a misplaced or lost byte shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A path for a socket file, unique to this test process and `name`.
fn socket_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("proc-ipc-{name}-{}.sock", std::process::id()))
}

const ECHO_SERVER: &str = "\
l = Listener(('127.0.0.1', 0), authkey=b'shared key')
print(l.address[1], flush=True)
c = l.accept()
m = c.recv_bytes()
c.send_bytes(m[::-1])
big = c.recv_bytes()
c.send_bytes(big + b'!')
print(len(big), flush=True)
";

#[test]
fn a_python_listener_and_our_client_exchange_bytes_both_ways() {
    let mut python = Python::run(ECHO_SERVER, &[]);
    let port: u16 = python.line().parse().expect("a port");
    let conn = Client::connect(
        Address::Tcp(([127, 0, 0, 1], port).into()),
        Some(b"shared key"),
    )
    .unwrap();
    conn.send_bytes(b"abc").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"cba");
    let big = pattern(200_000); // over 64 KiB: Python sends header and body apart
    conn.send_bytes(&big).unwrap();
    let back = conn.recv_bytes().unwrap();
    assert_eq!(back.len(), big.len() + 1);
    assert!(back[..big.len()] == big[..] && back[big.len()] == b'!');
    assert_eq!(python.finish().trim(), "200000");
}

const ECHO_CLIENT: &str = "\
address = sys.argv[1]
if address.startswith('@'):
    address = '\\0' + address[1:]
c = Client(address, authkey=b'shared key')
c.send_bytes(b'from python')
big = c.recv_bytes()
c.send_bytes(bytes(reversed(big)))
print(len(big), flush=True)
";

fn serve_a_python_client(listener: &Listener, argument: &str) {
    let python = Python::run(ECHO_CLIENT, &[argument]);
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"from python");
    let big = pattern(100_000);
    conn.send_bytes(&big).unwrap();
    let mut back = conn.recv_bytes().unwrap();
    back.reverse();
    assert!(back == big);
    assert_eq!(python.finish().trim(), "100000");
}

#[test]
fn our_listener_on_a_unix_path_serves_a_python_client() {
    let path = socket_path("py-unix");
    let listener = Listener::bind(path.as_path(), Some(b"shared key")).unwrap();
    serve_a_python_client(&listener, path.to_str().unwrap());
    assert_eq!(listener.last_accepted(), Some(Address::Unix("".into())));
}

#[test]
fn our_listener_on_an_abstract_address_serves_a_python_client() {
    let name = format!("@proc-ipc-py-abstract-{}", std::process::id());
    let listener = Listener::bind(name.as_str(), Some(b"shared key")).unwrap();
    assert_eq!(listener.address(), Address::from(name.as_str()));
    serve_a_python_client(&listener, &name);
}

const REFUSING_SERVER: &str = "\
l = Listener(('127.0.0.1', 0), authkey=b'right key')
print(l.address[1], flush=True)
try:
    l.accept()
    print('accepted')
except AuthenticationError:
    print('refused')
";

#[test]
fn a_python_listener_and_our_client_with_different_keys_both_refuse() {
    let mut python = Python::run(REFUSING_SERVER, &[]);
    let port: u16 = python.line().parse().expect("a port");
    let refused = Client::connect(
        Address::Tcp(([127, 0, 0, 1], port).into()),
        Some(b"wrong key"),
    );
    assert!(
        matches!(refused, Err(Error::AuthenticationError { .. })),
        "{refused:?}"
    );
    assert_eq!(python.finish().trim(), "refused");
}

const REFUSED_CLIENT: &str = "\
try:
    Client(sys.argv[1], authkey=b'wrong key')
    print('connected')
except AuthenticationError:
    print('refused')
";

#[test]
fn our_listener_and_a_python_client_with_different_keys_both_refuse() {
    let path = socket_path("py-refused");
    let listener = Listener::bind(path.as_path(), Some(b"right key")).unwrap();
    let python = Python::run(REFUSED_CLIENT, &[path.to_str().unwrap()]);
    let refused = listener.accept();
    assert!(
        matches!(refused, Err(Error::AuthenticationError { .. })),
        "{refused:?}"
    );
    assert_eq!(python.finish().trim(), "refused");
}

#[test]
fn our_listener_and_client_speak_the_sha256_handshake_and_refuse_a_wrong_key() {
    let listener = Listener::bind("127.0.0.1:0", Some(b"key")).unwrap();
    let address = listener.address();
    let client = std::thread::spawn(move || {
        let conn = Client::connect(&address, Some(b"key")).unwrap();
        // The client's own address, for last_accepted.
        let socket = TcpStream::from(conn.as_fd().try_clone_to_owned().unwrap());
        let local = socket.local_addr().unwrap();
        conn.send_bytes(local.to_string().as_bytes()).unwrap();
        let refused = Client::connect(&address, Some(b"not the key"));
        assert!(matches!(refused, Err(Error::AuthenticationError { .. })));
        conn
    });
    assert_eq!(listener.last_accepted(), None);
    let conn = listener.accept().unwrap();
    let local = String::from_utf8(conn.recv_bytes().unwrap()).unwrap();
    assert_eq!(
        listener.last_accepted(),
        Some(Address::from(local.as_str()))
    );
    assert!(matches!(
        listener.accept(),
        Err(Error::AuthenticationError { .. })
    ));
    drop(client.join().unwrap());
}

#[test]
fn a_peer_that_stalls_in_the_handshake_times_out_and_the_next_client_is_accepted() {
    let listener = Listener::bind("127.0.0.1:0", Some(b"key"))
        .unwrap()
        .with_handshake_timeout(Some(Duration::from_millis(200)));
    let Address::Tcp(address) = listener.address() else {
        panic!("a TCP address")
    };
    let _staller = TcpStream::connect(address).unwrap(); // connects and says nothing
    let started = Instant::now();
    match listener.accept() {
        Err(Error::TimedOut { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("expected a time-out, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30), "does not hang");
    let next = std::thread::spawn(move || Client::connect(address, Some(b"key")).map(drop));
    listener.accept().unwrap();
    next.join().unwrap().unwrap();
}

#[test]
fn a_client_whose_listener_stalls_times_out() {
    let listener = Listener::bind("127.0.0.1:0", None::<&[u8]>).unwrap();
    let got = Client::connect_with_timeout(
        listener.address(),
        Some(b"key"),
        Some(Duration::from_millis(100)),
    );
    assert!(matches!(got, Err(Error::TimedOut { .. })), "{got:?}");
}

/// A raw TCP peer of a listener without a key: it writes whatever bytes a test wants.
fn raw_peer() -> (proc_ipc::Connection, TcpStream) {
    let listener = Listener::bind("127.0.0.1:0", None::<&[u8]>).unwrap();
    let Address::Tcp(address) = listener.address() else {
        panic!("a TCP address")
    };
    let raw = TcpStream::connect(address).unwrap();
    (listener.accept().unwrap(), raw)
}

#[test]
fn a_peer_announcing_a_huge_frame_is_refused_without_storing_it() {
    let (conn, mut raw) = raw_peer();
    let mut frame = (-1i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
    frame.extend_from_slice(b"a few bytes of it");
    raw.write_all(&frame).unwrap();
    drop(raw);
    // The limit refuses it at once; the rest of it never comes.
    assert!(matches!(
        conn.recv_bytes(),
        Err(Error::EofInMessage { .. } | Error::TooLarge { .. })
    ));
}

#[test]
fn the_long_header_form_and_a_small_frame_after_an_over_limit_one_are_read() {
    let (conn, mut raw) = raw_peer();
    let conn = conn.with_limit(10);
    let mut bytes = (11i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(b"eleven byte");
    bytes.extend_from_slice(&(-1i32).to_be_bytes());
    bytes.extend_from_slice(&5u64.to_be_bytes());
    bytes.extend_from_slice(b"hello");
    raw.write_all(&bytes).unwrap();
    assert!(matches!(
        conn.recv_bytes(),
        Err(Error::TooLarge { len: 11, limit: 10 })
    ));
    assert_eq!(conn.recv_bytes().unwrap(), b"hello");
}

#[test]
fn a_negative_frame_length_is_a_protocol_error_and_closes_the_connection() {
    let (conn, mut raw) = raw_peer();
    raw.write_all(&(-5i32).to_be_bytes()).unwrap();
    raw.write_all(b"junk").unwrap();
    assert!(matches!(conn.recv_bytes(), Err(Error::Protocol { .. })));
    assert!(conn.closed());
    assert!(matches!(conn.recv_bytes(), Err(Error::Closed { .. })));
}

#[test]
fn a_handshake_message_over_256_bytes_is_refused() {
    let listener = Listener::bind("127.0.0.1:0", Some(b"key")).unwrap();
    let Address::Tcp(address) = listener.address() else {
        panic!("a TCP address")
    };
    let client = std::thread::spawn(move || {
        let mut raw = TcpStream::connect(address).unwrap();
        let mut challenge = [0u8; 4];
        raw.read_exact(&mut challenge).unwrap();
        let mut answer = 300i32.to_be_bytes().to_vec();
        answer.extend_from_slice(&[b'x'; 300]);
        raw.write_all(&answer).unwrap();
        raw
    });
    let refused = listener.accept();
    assert!(
        matches!(&refused, Err(Error::AuthenticationError { reason }) if reason.contains("256")),
        "{refused:?}"
    );
    drop(client.join().unwrap());
}

#[test]
fn a_value_holding_handles_cannot_cross_a_python_protocol_connection() {
    let (conn, _raw) = raw_peer();
    let (a, _b) = pipe().unwrap();
    assert!(matches!(
        conn.send(&a),
        Err(Error::HandlesNotCarried { count: 1 })
    ));
    assert!(conn.send(&(1u8, "plain values do")).is_ok());
}

#[test]
fn the_socket_file_is_removed_with_the_listener_only_while_it_is_still_ours() {
    let path = socket_path("ours");
    let listener = Listener::bind(path.as_path(), None::<&[u8]>).unwrap();
    assert!(path.exists());
    listener.close();
    assert!(!path.exists(), "close removes it");
    drop(listener);

    let listener = Listener::bind(path.as_path(), None::<&[u8]>).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    drop(listener);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    std::fs::remove_file(&path).unwrap();
}
