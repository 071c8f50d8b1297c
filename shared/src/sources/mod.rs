//! One folder per job kind.

pub mod filesystem;
pub mod s3;

use crate::model::{Outcome, Task};

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
