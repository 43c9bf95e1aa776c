//! Seed tour, section 9: a queue between processes (IPC).
//!
//! Python makes `Queue(3)`, puts `'a'`, `'b'` and `{'x': 2}`, notes that the basket is
//! full (a fourth `put` would block), gets the three back in FIFO order, and notes that the
//! queue is empty: a fourth `get` would block forever, and the program would never end.
//! Here the fourth put and the fourth get have a timeout instead, and say what they met.
//! Then the same queue carries items from a child process to main, the IPC the section is
//! named for.
//!
//! ```text
//! cargo run --example 09_queue
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use multiproc::prelude::*;
use serde::{Deserialize, Serialize};

/// What the tutorial puts: strings and a dict.
#[derive(Debug, Serialize, Deserialize)]
enum Item {
    Text(String),
    Dict(BTreeMap<String, i64>),
}

/// The child of the second half: puts five messages, then closes the queue.
fn send_five(q: Queue<Item>) {
    for i in 1..=5 {
        q.put(Item::Text(format!("message {i} from the child")))
            .expect("put");
    }
    q.close(); // no more items: main's loop ends after the last one
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let q: Queue<Item> = Queue::new(3)?;
    q.put(Item::Text("a".into()))?;
    q.put(Item::Text("b".into()))?;
    q.put(Item::Dict(BTreeMap::from([("x".to_string(), 2)])))?;
    println!(
        "篮子满了 (the basket is full): {} of {} items",
        q.len(),
        q.maxsize()
    );

    let wait = Duration::from_millis(500);
    let started = Instant::now();
    match q.put_timeout(Item::Text("d".into()), wait) {
        Err(PutError::Full(item)) => println!(
            "4th put: still full after {wait:?}, handed back {item:?} (waited {:.2} s)",
            started.elapsed().as_secs_f64()
        ),
        other => println!("4th put: unexpected {other:?}"),
    }

    for _ in 0..3 {
        println!("get: {:?}", q.get()?);
    }
    println!("队列为空 (the queue is empty)");
    let started = Instant::now();
    match q.get_timeout(wait) {
        Err(GetError::Empty) => println!(
            "4th get: still empty after {wait:?} (waited {:.2} s)",
            started.elapsed().as_secs_f64()
        ),
        other => println!("4th get: unexpected {other:?}"),
    }

    // Between processes: a child puts, main gets, in the same order. The queue is an
    // argument of the child's function: under every start method it is the same queue.
    let mut child = Process::target(send_five, (q.clone(),));
    child.start()?;
    for item in q.iter() {
        println!("main got: {item:?}");
    }
    child.join()?;
    Ok(())
}
