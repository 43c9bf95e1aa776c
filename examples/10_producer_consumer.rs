//! Seed tour, section 10: producers and consumers, with the ready-made helper.
//!
//! 小王 makes 10 portions of 包子 (buns) and 小周 10 of 土豆丝 (potato shreds), each after a
//! short random delay; 小戴 and 小杨 eat whatever comes, taking their time too. In Python the
//! consumers loop on `q.get()` forever and must remember `q.task_done()`; main joins the
//! producers, then `q.join()`, and the consumers, being daemons, die with main.
//!
//! Here `ProducerConsumer` does that bookkeeping: it marks each item done after the
//! consumer's function returns, closes the queue once both producers have finished so that
//! the consumers eat what is left and stop, and reports what happened. main prints `主`
//! after everything is eaten. (`10_joinable_queue` is the tutorial's version, line by line.)
//!
//! ```text
//! cargo run --example 10_producer_consumer
//! ```

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use multiproc::prelude::*;

/// A random pause of 50 to 250 ms ("模拟生产数据的时间", the time it takes to make or eat).
fn pause() {
    let random = RandomState::new().hash_one(std::process::id());
    std::thread::sleep(Duration::from_millis(50 + random % 200));
}

/// A cook: makes 10 portions of `food`, one at a time.
fn cook(out: &Producer<String>, food: &str) -> Result<(), proc_patterns::BoxError> {
    for i in 0..10 {
        let dish = format!("{food}{i}");
        pause();
        out.put(dish.clone())?;
        println!("厨师{}生成了{dish}", current_process().name());
    }
    Ok(())
}

/// An eater: one dish at a time; the helper marks it done afterwards.
fn eat(dish: String) {
    pause();
    println!("吃货{}吃了{dish}", current_process().name());
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let report = ProducerConsumer::new()
        .producer("小王", |out| cook(out, "包子"))
        .producer("小周", |out| cook(out, "土豆丝"))
        .consumer("小戴", eat)
        .consumer("小杨", eat)
        .run()?;
    println!(
        "produced {}, eaten {}, unfinished {}, failures {}",
        report.produced,
        report.consumed,
        report.unfinished,
        report.failures.len()
    );
    for failure in &report.failures {
        println!("failure: {failure}");
    }
    println!("主");
    Ok(())
}
