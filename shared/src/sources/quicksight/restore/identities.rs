//! Groups, users and memberships re-created in the identity region. What exists is left as it
//! is; an identity QuickSight cannot be asked to create is listed with the reason.

use std::time::Duration;

use aws_sdk_quicksight::error::ProvideErrorMetadata;
use aws_sdk_quicksight::types::{IdentityType, UserRole};

use super::task::{QuickSightRestoreTask, UserIdentity};
use crate::aws::error_text;
use crate::model::Status;
use crate::pipeline::kind::{KindTask, Step};
use crate::sources::quicksight::QuickSight;

/// Looks for a membership's user or group before it fails (they are made by other tasks of
/// the same run).
const MEMBERSHIP_LOOKS: u32 = 12;
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(5);

type RestoreStep = Step<QuickSightRestoreTask>;

fn done(task: &QuickSightRestoreTask, status: Status, detail: impl Into<String>) -> RestoreStep {
    Step::Done(task.outcome(status).with_detail(detail.into()))
}

pub async fn group(
    qs: &QuickSight,
    namespace: &str,
    task: &QuickSightRestoreTask,
    name: &str,
    description: Option<&str>,
) -> RestoreStep {
    let created = qs
        .client
        .create_group()
        .aws_account_id(&qs.account)
        .namespace(namespace)
        .group_name(name)
        .set_description(description.map(str::to_string))
        .send()
        .await;
    match created {
        Ok(_) => done(task, Status::Ok, "created"),
        Err(err) if err.code() == Some("ResourceExistsException") => done(task, Status::Skipped, "exists"),
        Err(err) => done(task, Status::Failed, format!("CreateGroup: {}", error_text(&err))),
    }
}

/// An IAM identity to register: its ARN, and the session name of a role's session.
struct IamIdentity {
    arn: String,
    session: Option<String>,
}

/// How to register `user` again, or why it cannot be.
fn registration(user: &UserIdentity, account: &str) -> Result<(IdentityType, Option<IamIdentity>), String> {
    match user.identity_type.as_deref() {
        Some("QUICKSIGHT") => {
            if user.email.is_none() {
                return Err("a QuickSight user needs an email, and the backup has none".into());
            }
            Ok((IdentityType::Quicksight, None))
        }
        // An IAM user's QuickSight name is its IAM name; a role session's is `role/session`.
        Some("IAM") => match user.user_name.split_once('/') {
            Some((role, session)) => Ok((
                IdentityType::Iam,
                Some(IamIdentity { arn: format!("arn:aws:iam::{account}:role/{role}"), session: Some(session.into()) }),
            )),
            None => Ok((
                IdentityType::Iam,
                Some(IamIdentity { arn: format!("arn:aws:iam::{account}:user/{}", user.user_name), session: None }),
            )),
        },
        Some("IAM_IDENTITY_CENTER") => {
            Err("IAM Identity Center users come from the identity store; add them there (not created)".into())
        }
        other => Err(format!("identity type {other:?} cannot be registered (not created)")),
    }
}

pub async fn user(qs: &QuickSight, namespace: &str, task: &QuickSightRestoreTask, user: &UserIdentity) -> RestoreStep {
    let exists = qs
        .client
        .describe_user()
        .aws_account_id(&qs.account)
        .namespace(namespace)
        .user_name(&user.user_name)
        .send()
        .await;
    match exists {
        Ok(_) => return done(task, Status::Skipped, "exists"),
        Err(err) if err.code() == Some("ResourceNotFoundException") => {}
        Err(err) => return done(task, Status::Failed, format!("DescribeUser: {}", error_text(&err))),
    }
    let (identity_type, iam) = match registration(user, &qs.account) {
        Ok(how) => how,
        Err(reason) => return done(task, Status::Skipped, reason),
    };
    let role = user.role.as_deref().unwrap_or("READER");
    let mut request = qs
        .client
        .register_user()
        .aws_account_id(&qs.account)
        .namespace(namespace)
        .identity_type(identity_type.clone())
        .user_role(UserRole::from(role))
        .email(user.email.clone().unwrap_or_default())
        .set_custom_permissions_name(user.custom_permissions_name.clone());
    match iam {
        Some(iam) => request = request.iam_arn(iam.arn).set_session_name(iam.session),
        None => request = request.user_name(&user.user_name),
    }
    match request.send().await {
        Ok(_) if identity_type == IdentityType::Quicksight => {
            done(task, Status::Ok, "registered; QuickSight invites the user by email")
        }
        Ok(_) => done(task, Status::Ok, "registered"),
        Err(err) if err.code() == Some("ResourceExistsException") => done(task, Status::Skipped, "exists"),
        Err(err) => done(task, Status::Failed, format!("RegisterUser: {}", error_text(&err))),
    }
}

pub async fn membership(
    qs: &QuickSight,
    namespace: &str,
    task: &QuickSightRestoreTask,
    user: &str,
    group: &str,
    looks: u32,
) -> RestoreStep {
    let added = qs
        .client
        .create_group_membership()
        .aws_account_id(&qs.account)
        .namespace(namespace)
        .group_name(group)
        .member_name(user)
        .send()
        .await;
    match added {
        Ok(_) => done(task, Status::Ok, "added"),
        Err(err) if err.code() == Some("ResourceNotFoundException") && looks + 1 < MEMBERSHIP_LOOKS => {
            let again = QuickSightRestoreTask::Membership {
                user: user.to_string(),
                group: group.to_string(),
                looks: looks + 1,
            };
            Step::Wait(again, MEMBERSHIP_WAIT)
        }
        Err(err) => done(task, Status::Failed, format!("CreateGroupMembership: {}", error_text(&err))),
    }
}
