//! Seed tour, section 10, as the tutorial writes it: a bare `JoinableQueue` and daemon
//! consumers.
//!
//! 小王 makes 10 portions of 包子 (buns) and 小周 10 of 土豆丝 (potato shreds), each after a
//! short random delay. 小戴 and 小杨 are daemons that eat forever: `get`, eat, `task_done`.
//! main joins both producers, then `q.join()` waits until every dish put has been marked
//! done, and main prints `主`. The consumers are still waiting on an empty queue then; being
//! daemons, they end with main. (`10_producer_consumer` does the same with the helper.)
//!
//! ```text
//! cargo run --example 10_joinable_queue
//! ```

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use multiproc::prelude::*;

/// A random pause of 50 to 250 ms.
fn pause() {
    let random = RandomState::new().hash_one(std::process::id());
    std::thread::sleep(Duration::from_millis(50 + random % 200));
}

fn producer(name: String, food: String, q: JoinableQueue<String>) {
    for i in 0..10 {
        let res = format!("{food}{i}");
        // 模拟生产数据的时间: the time it takes to make it
        pause();
        q.put(res.clone()).expect("the queue is never closed here");
        println!("厨师{name}生成了{res}");
    }
}

fn consumer(name: String, q: JoinableQueue<String>) {
    // 订单都没了还在等: waits on forever once the queue is empty; main's exit ends it.
    while let Ok(res) = q.get() {
        // 模拟处理数据的时间: the time it takes to eat it
        pause();
        println!("吃货{name}吃了{res}");
        // Each task_done tells q.join() one more dish is finished.
        q.task_done().expect("one task_done per dish taken");
    }
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let q: JoinableQueue<String> = JoinableQueue::new(0)?;
    // Python's Process(target=producer, args=('小王', '包子', q)): the queue is an argument.
    let mut p1 = Process::target(producer, ("小王".into(), "包子".into(), q.clone()));
    let mut p3 = Process::target(producer, ("小周".into(), "土豆丝".into(), q.clone()));
    // 守护进程: the consumers die with main
    let mut c1 = Process::target(consumer, ("小戴".into(), q.clone())).with_daemon(true);
    let mut c2 = Process::target(consumer, ("小杨".into(), q.clone())).with_daemon(true);
    p1.start()?;
    p3.start()?;
    c1.start()?;
    c2.start()?;
    p1.join()?;
    p3.join()?;
    // Returns once the consumers have called task_done for every dish.
    q.join();
    println!("主");
    Ok(())
}
