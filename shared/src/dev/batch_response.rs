//! How an SQS event source mapping with `ReportBatchItemFailures` reads a function's answer
//! (AWS Lambda developer guide, "Reporting batch item failures for Lambda functions with an
//! Amazon SQS trigger").

use serde_json::Value;

use super::invoke::Invocation;

/// Which messages of a batch the mapping deletes.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Delete every message.
    AllSucceeded,
    /// Delete every message but these (their ids).
    SomeFailed(Vec<String>),
    /// Delete none: every message comes back after its visibility time-out.
    AllFailed(String),
}

/// `batch` holds the message ids sent in the event.
pub fn judge(batch: &[String], invocation: &Invocation) -> Verdict {
    let response = match invocation {
        Invocation::FunctionError(body) => return Verdict::AllFailed(format!("the function failed: {body}")),
        Invocation::Response(response) => response,
    };
    // A null or empty response, or a null or empty list, is complete success.
    let failures = match response {
        Value::Null => return Verdict::AllSucceeded,
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return Verdict::AllSucceeded,
            Some(Value::Array(items)) => items,
            Some(other) => return Verdict::AllFailed(format!("batchItemFailures is not a list: {other}")),
        },
        other => return Verdict::AllFailed(format!("the response is not a batch response: {other}")),
    };
    let mut failed = Vec::with_capacity(failures.len());
    for item in failures {
        // A missing, null, empty or unknown identifier makes the whole batch a failure.
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && batch.iter().any(|b| b == id) => {
                if !failed.iter().any(|f| f == id) {
                    failed.push(id.to_string());
                }
            }
            _ => return Verdict::AllFailed(format!("batchItemFailures names no message of the batch: {item}")),
        }
    }
    if failed.is_empty() { Verdict::AllSucceeded } else { Verdict::SomeFailed(failed) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn batch() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    fn answer(value: Value) -> Verdict {
        judge(&batch(), &Invocation::Response(value))
    }

    #[test]
    fn empty_and_null_answers_are_complete_success() {
        for value in [Value::Null, json!({}), json!({"batchItemFailures": null}), json!({"batchItemFailures": []})] {
            assert_eq!(answer(value.clone()), Verdict::AllSucceeded, "{value}");
        }
    }

    #[test]
    fn named_messages_stay_and_the_others_go() {
        let verdict = answer(json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "b"}]}));
        assert_eq!(verdict, Verdict::SomeFailed(vec!["b".into()]));
    }

    #[test]
    fn a_bad_identifier_or_a_function_error_fails_the_whole_batch() {
        for value in [
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemId": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "z"}]}),
            json!({"batchItemFailures": "a"}),
            json!("not a batch response"),
        ] {
            assert!(matches!(answer(value.clone()), Verdict::AllFailed(_)), "{value}");
        }
        let error = judge(&batch(), &Invocation::FunctionError("{\"errorType\":\"Panic\"}".into()));
        assert!(matches!(error, Verdict::AllFailed(why) if why.contains("Panic")));
    }
}
