//! One folder per job kind.

pub mod filesystem;
pub mod s3;

use std::future::Future;

use futures::{StreamExt, stream};

use crate::model::{Outcome, Task};
use crate::pipeline::Engine;

/// A task that may have to wait (for an archive retrieval) either finishes or waits.
pub enum Step {
    Done(Outcome),
    Waiting(Task),
}

/// The outcomes of the tasks that finished, and the tasks that wait.
pub fn partition(steps: Vec<Step>) -> (Vec<Outcome>, Vec<Task>) {
    let (mut outcomes, mut waiting) = (Vec::new(), Vec::new());
    for step in steps {
        match step {
            Step::Done(outcome) => outcomes.push(outcome),
            Step::Waiting(task) => waiting.push(task),
        }
    }
    (outcomes, waiting)
}

/// Runs `tasks` with at most `concurrency` in flight, reporting each finished one to the progress
/// display; returns the outcomes and the tasks that wait.
pub async fn run_tasks<'a, F, Fut>(
    engine: &'a Engine,
    tasks: &'a [Task],
    concurrency: usize,
    run: F,
) -> (Vec<Outcome>, Vec<Task>)
where
    F: Fn(&'a Task) -> Fut,
    Fut: Future<Output = Step> + 'a,
{
    let steps: Vec<Step> = stream::iter(tasks)
        .map(|task| {
            let step = run(task);
            async move {
                let step = step.await;
                if let Step::Done(outcome) = &step {
                    engine.progress.finished(outcome);
                }
                step
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    partition(steps)
}
