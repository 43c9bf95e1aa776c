//! The calls that stream: [`Pool::imap`] and [`Pool::imap_unordered`], whose iterators
//! pull the inputs as their results are taken.

use crossbeam_channel::Receiver;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Pool;
use super::outcome::ChunkDone;
use super::results::{Intake, MapIter, UnorderedIter};
use super::submit::{Chunking, Feeder};

impl Pool {
    /// Calls `f` on every input; the results come in input order, each as soon as it and
    /// those before it are done. Each is a `Result`: a failed task does not end the others,
    /// and work that could not be submitted (a closed pool) yields an error per task.
    ///
    /// The inputs are taken as the results are: a few chunks per worker are out at a time,
    /// so an endless input works and a long one is not held in memory. An input whose
    /// length is not known goes one item per chunk (Python's `imap` default); see
    /// [`imap_chunked`](Self::imap_chunked) for larger chunks.
    ///
    /// ```
    /// fn check(x: i32) -> i32 {
    ///     assert!(x != 2, "two is out");
    ///     x
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let results: Vec<_> = pool.imap(check, [1, 2, 3]).collect();
    /// assert_eq!(results[0].as_ref().unwrap(), &1);
    /// assert!(results[1].as_ref().unwrap_err().to_string().contains("two is out"));
    /// assert_eq!(results[2].as_ref().unwrap(), &3);
    ///
    /// // An endless input: results come as they are taken.
    /// let first: Vec<u64> = pool.imap(|x: u64| x * x, 0..).take(5).collect::<Result<_, _>>()?;
    /// assert_eq!(first, [0, 1, 4, 9, 16]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn imap<'p, A, R, I>(&'p self, f: fn(A) -> R, inputs: I) -> MapIter<'p, R>
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        self.imap_with(f, inputs, self.chunksize)
    }

    /// As [`imap`](Self::imap), with `chunksize` inputs sent to a worker at a time.
    pub fn imap_chunked<'p, A, R, I>(
        &'p self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: usize,
    ) -> MapIter<'p, R>
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        self.imap_with(f, inputs, Some(chunksize))
    }

    fn imap_with<'p, A, R, I>(
        &'p self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: Option<usize>,
    ) -> MapIter<'p, R>
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        let (rx, intake) = self.streamed(f, inputs, chunksize);
        MapIter::new(rx, intake)
    }

    /// Calls `f` on every input; the results come as tasks finish, in any order. The inputs
    /// are taken as the results are, as for [`imap`](Self::imap).
    ///
    /// ```
    /// fn cube(x: u32) -> u32 {
    ///     x * x * x
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let mut cubes: Vec<u32> = pool.imap_unordered(cube, 1..=4).collect::<Result<_, _>>()?;
    /// cubes.sort();
    /// assert_eq!(cubes, [1, 8, 27, 64]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn imap_unordered<'p, A, R, I>(&'p self, f: fn(A) -> R, inputs: I) -> UnorderedIter<'p, R>
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        self.imap_unordered_with(f, inputs, self.chunksize)
    }

    /// As [`imap_unordered`](Self::imap_unordered), with `chunksize` inputs sent to a
    /// worker at a time (1: a result for each input as soon as it is done).
    pub fn imap_unordered_chunked<'p, A, R, I>(
        &'p self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: usize,
    ) -> UnorderedIter<'p, R>
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        self.imap_unordered_with(f, inputs, Some(chunksize))
    }

    fn imap_unordered_with<'p, A, R, I>(
        &'p self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: Option<usize>,
    ) -> UnorderedIter<'p, R>
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        let (rx, intake) = self.streamed(f, inputs, chunksize);
        UnorderedIter::new(rx, intake)
    }

    /// What both streaming iterators read from: the results' channel, and the intake that
    /// feeds the inputs lazily, a few chunks per worker out at a time.
    fn streamed<'p, A, R, I>(
        &'p self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: Option<usize>,
    ) -> (Receiver<ChunkDone>, Intake<'p>)
    where
        A: Serialize + DeserializeOwned + 'p,
        R: Serialize + DeserializeOwned + 'p,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'p,
    {
        let (sink, rx) = self.sink(None);
        let feeder = Feeder::new(
            self,
            f,
            inputs.into_iter(),
            chunksize,
            Chunking::Streaming,
            sink,
        );
        let intake = Intake::new(
            Box::new(feeder),
            self.streaming_window(),
            self.driver_alive.clone(),
        );
        (rx, intake)
    }

    /// The chunks `imap` and `imap_unordered` keep out at a time: a few per worker, so that
    /// each has one to run and more waiting.
    fn streaming_window(&self) -> usize {
        3 * self.processes.max(1)
    }
}
