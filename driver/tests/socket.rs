//! The reader thread and the socket probes, over loopback TCP.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use exampple_core::parser::{Limits, StreamLexer};
use exampple_driver::connection::{Connection, READ_SPIN, await_bytes_briefly, peer_ended};
use exampple_driver::shared_lexer::Next;

/// Two ends of a loopback connection: ours, theirs.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    (ours, theirs)
}

fn settle() {
    std::thread::sleep(Duration::from_millis(20));
}

/// The kernel says the peer has ended its side as soon as its FIN is in, even with its
/// last bytes still unread; a reset counts too.
#[test]
fn peer_ended_sees_the_end_behind_unread_bytes() {
    let (ours, mut theirs) = pair();
    assert!(!peer_ended(&ours));
    theirs.write_all(b"<last words/>").unwrap();
    settle();
    assert!(!peer_ended(&ours), "bytes to read are not an end");
    theirs.shutdown(Shutdown::Write).unwrap();
    settle();
    assert!(peer_ended(&ours), "the end behind unread bytes");
    drop(theirs);
    settle();
    assert!(peer_ended(&ours));
}

/// With nothing to read it watches for the whole spin; with bytes waiting it returns and
/// leaves them to be read; at the peer's end it returns too.
#[test]
fn await_bytes_briefly_waits_out_its_spin_and_reads_nothing() {
    let (mut ours, mut theirs) = pair();
    let started = Instant::now();
    await_bytes_briefly(&ours);
    assert!(started.elapsed() >= READ_SPIN, "{:?}", started.elapsed());

    theirs.write_all(b"<waiting/>").unwrap();
    settle();
    await_bytes_briefly(&ours);
    let mut buffer = [0u8; 64];
    let n = ours.read(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"<waiting/>");

    theirs.shutdown(Shutdown::Write).unwrap();
    settle();
    await_bytes_briefly(&ours);
    assert_eq!(ours.read(&mut buffer).unwrap(), 0);
}

const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='c.localhost'>";

/// The next thing the input has for the core, waiting up to 5 s for it.
fn next(connection: &Connection, told: &mpsc::Receiver<()>) -> Next {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut scratch = Vec::new();
    loop {
        match connection.input.next(&mut scratch) {
            Next::Nothing => {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(told.recv_timeout(left).is_ok(), "nothing came");
            }
            other => return other,
        }
    }
}

/// The reader tokenises what the server writes into the connection's input and tells the
/// core's side, then puts the server's end there; dropping the connection shuts the socket.
#[test]
fn the_reader_puts_the_stream_into_the_input_then_its_end() {
    let (ours, mut theirs) = pair();
    let (tell, told) = mpsc::channel();
    let (read_tx, reads) = mpsc::channel();
    let connection = Connection::start(
        ours,
        StreamLexer::new(Limits::default()),
        move || {
            let _ = tell.send(());
        },
        move || {
            let _ = read_tx.send(());
        },
    )
    .unwrap();

    theirs
        .write_all(format!("{HEADER}<iq type='get' id='1'/>").as_bytes())
        .unwrap();
    match next(&connection, &told) {
        Next::Tokens(tokens) => {
            assert!(!tokens.is_empty() && !tokens.is_final(), "{tokens:?}");
            connection.input.give_back(tokens);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        reads.recv_timeout(Duration::from_secs(5)).is_ok(),
        "after_read is called"
    );
    assert!(!connection.server_ended());

    theirs.shutdown(Shutdown::Write).unwrap();
    loop {
        match next(&connection, &told) {
            Next::End(reason) => {
                assert_eq!(reason, "the server closed the connection");
                break;
            }
            Next::Tokens(tokens) => connection.input.give_back(tokens),
            Next::Nothing => unreachable!("next waits for something"),
        }
    }
    assert!(connection.server_ended());

    drop(connection);
    let mut buffer = [0u8; 16];
    assert_eq!(theirs.read(&mut buffer).unwrap(), 0, "our side is shut");
}
