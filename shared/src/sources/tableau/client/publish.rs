//! Publishing workbooks back to a site: projects created where missing, one request up to
//! 64 MB, an upload session appended in parts above that, always as a job that the caller looks
//! up later (a Lambda never waits for it).

use futures::{Stream, StreamExt};

use super::{Connection, TableauError, transport};
use crate::sources::tableau::xml::{self, Project, Workbook, escape};

/// Tableau refuses a single-request publish larger than this: bigger files go in parts.
pub const MAX_SINGLE_PUBLISH: u64 = 64 << 20;
/// The size of each part appended to an upload session (Tableau accepts up to 64 MB).
const APPEND_PART: usize = 32 << 20;
const BOUNDARY: &str = "backline-f1b7c9c55e2b4fb1d2dbb9a2e8f4a6c3";

/// Credentials for a data connection of a published workbook, the password resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionCredentials {
    pub server_address: Option<String>,
    pub server_port: Option<String>,
    pub username: String,
    pub password: String,
    pub embed: bool,
}

/// What to publish, and how.
#[derive(Clone, Copy)]
pub struct Publication<'a> {
    pub name: &'a str,
    pub project_id: &'a str,
    /// `Name.twbx` or `Name.twb`: the type of the file.
    pub file_name: &'a str,
    pub size: u64,
    pub overwrite: bool,
    pub connections: &'a [ConnectionCredentials],
}

/// A publish the server took on as a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed(String),
}

/// One part of a `multipart/mixed` body as Tableau reads them.
fn part(body: &mut Vec<u8>, name: &str, file_name: Option<&str>, content_type: &str, content: &[u8]) {
    let file = file_name.map(|f| format!("; filename=\"{}\"", f.replace('"', "_"))).unwrap_or_default();
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: name=\"{name}\"{file}\r\nContent-Type: {content_type}\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n");
}

fn finish(body: &mut Vec<u8>) {
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
}

const MULTIPART: &str = "multipart/mixed; boundary=backline-f1b7c9c55e2b4fb1d2dbb9a2e8f4a6c3";

fn publish_payload(name: &str, project_id: &str, connections: &[ConnectionCredentials]) -> String {
    let mut listed = String::new();
    for c in connections {
        let address =
            c.server_address.as_deref().map(|a| format!(" serverAddress=\"{}\"", escape(a))).unwrap_or_default();
        let port = c.server_port.as_deref().map(|p| format!(" serverPort=\"{}\"", escape(p))).unwrap_or_default();
        listed.push_str(&format!(
            "<connection{address}{port}><connectionCredentials name=\"{}\" password=\"{}\" embed=\"{}\"/></connection>",
            escape(&c.username),
            escape(&c.password),
            c.embed
        ));
    }
    let connections = if listed.is_empty() { String::new() } else { format!("<connections>{listed}</connections>") };
    format!(
        "<tsRequest><workbook name=\"{}\" showTabs=\"true\">{connections}<project id=\"{}\"/></workbook></tsRequest>",
        escape(name),
        escape(project_id)
    )
}

impl Connection {
    /// The id of the project at `path` (names from the top), creating the levels that are missing.
    pub async fn ensure_project(&self, projects: &mut Vec<Project>, path: &[String]) -> Result<String, TableauError> {
        let mut parent: Option<String> = None;
        for name in path {
            let found = projects.iter().find(|p| &p.name == name && p.parent_id == parent).map(|p| p.id.clone());
            let id = match found {
                Some(id) => id,
                None => {
                    let parent_attr =
                        parent.as_deref().map(|p| format!(" parentProjectId=\"{}\"", escape(p))).unwrap_or_default();
                    let body = format!("<tsRequest><project name=\"{}\"{parent_attr}/></tsRequest>", escape(name));
                    let response = match self
                        .send("create project", |http, base| {
                            http.post(format!("{base}/projects"))
                                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                                .body(body.clone())
                        })
                        .await
                    {
                        Ok(response) => response,
                        // There already: made by another restore, or by an earlier attempt whose
                        // answer was lost.
                        Err(TableauError::Api { status: 409, .. }) => {
                            let listed = self.projects().await?;
                            let same = |p: &&Project| p.name.eq_ignore_ascii_case(name) && p.parent_id == parent;
                            let found = listed.iter().find(same).cloned();
                            *projects = listed;
                            match found {
                                Some(project) => {
                                    parent = Some(project.id);
                                    continue;
                                }
                                None => {
                                    return Err(transport(
                                        "create project",
                                        format!("{name:?} conflicts with a project that is not listed"),
                                    ));
                                }
                            }
                        }
                        Err(err) => return Err(err),
                    };
                    let text = response.text().await.map_err(|e| transport("create project", e))?;
                    let created = xml::projects(&text).map_err(|e| transport("create project", e))?;
                    let project =
                        created.into_iter().next().ok_or_else(|| transport("create project", "no <project>"))?;
                    let project = Project { parent_id: parent.clone(), ..project };
                    let id = project.id.clone();
                    projects.push(project);
                    id
                }
            };
            parent = Some(id);
        }
        parent.ok_or_else(|| transport("project", "an empty project path"))
    }

    /// The workbook named `name` in the project, if there is one.
    pub fn existing<'a>(workbooks: &'a [Workbook], name: &str, project_id: &str) -> Option<&'a Workbook> {
        workbooks.iter().find(|w| w.name == name && w.project_id.as_deref() == Some(project_id))
    }

    /// Publishes `file` as a job: in one request when it fits, else through an upload session
    /// in parts.
    pub async fn publish<S, B, E>(&self, what: &Publication<'_>, file: S) -> Result<Job, TableauError>
    where
        S: Stream<Item = Result<B, E>> + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let Publication { name, project_id, file_name, size, overwrite, connections } = *what;
        let call = "publish workbook";
        let overwrite = if overwrite { "true" } else { "false" };
        let workbook_type = if file_name.ends_with(".twb") { "twb" } else { "twbx" };
        let payload = publish_payload(name, project_id, connections);
        let mut file = std::pin::pin!(file);
        let response = if size <= MAX_SINGLE_PUBLISH {
            let mut content = Vec::with_capacity(size as usize);
            while let Some(piece) = file.next().await {
                content.extend_from_slice(
                    piece.map_err(|e| transport(call, format!("reading the backup: {e}")))?.as_ref(),
                );
            }
            let mut body = Vec::with_capacity(content.len() + 1024);
            part(&mut body, "request_payload", None, "text/xml", payload.as_bytes());
            part(&mut body, "tableau_workbook", Some(file_name), "application/octet-stream", &content);
            finish(&mut body);
            drop(content);
            self.send(call, |http, base| {
                http.post(format!("{base}/workbooks"))
                    .query(&[("overwrite", overwrite), ("asJob", "true")])
                    .header(reqwest::header::CONTENT_TYPE, MULTIPART)
                    .body(body.clone())
            })
            .await?
        } else {
            let session = self.upload(file).await?;
            let mut body = Vec::new();
            part(&mut body, "request_payload", None, "text/xml", payload.as_bytes());
            finish(&mut body);
            self.send(call, |http, base| {
                http.post(format!("{base}/workbooks"))
                    .query(&[
                        ("uploadSessionId", session.as_str()),
                        ("workbookType", workbook_type),
                        ("overwrite", overwrite),
                        ("asJob", "true"),
                    ])
                    .header(reqwest::header::CONTENT_TYPE, MULTIPART)
                    .body(body.clone())
            })
            .await?
        };
        let text = response.text().await.map_err(|e| transport(call, e))?;
        let job = xml::job(&text).map_err(|e| transport(call, e))?;
        Ok(Job { id: job.id })
    }

    /// Appends the file to a new upload session in parts; returns the session's id.
    async fn upload<S, B, E>(&self, file: std::pin::Pin<&mut S>) -> Result<String, TableauError>
    where
        S: Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let call = "upload workbook";
        let response = self.send(call, |http, base| http.post(format!("{base}/fileUploads"))).await?;
        let text = response.text().await.map_err(|e| transport(call, e))?;
        let session = xml::upload_session(&text).map_err(|e| transport(call, e))?;
        let mut file = file;
        let mut buffer: Vec<u8> = Vec::with_capacity(APPEND_PART);
        loop {
            let next = file.next().await;
            let ended = next.is_none();
            if let Some(piece) = next {
                buffer.extend_from_slice(
                    piece.map_err(|e| transport(call, format!("reading the backup: {e}")))?.as_ref(),
                );
            }
            while buffer.len() >= APPEND_PART || (ended && !buffer.is_empty()) {
                let rest = buffer.split_off(buffer.len().min(APPEND_PART));
                let chunk = std::mem::replace(&mut buffer, rest);
                let mut body = Vec::with_capacity(chunk.len() + 512);
                part(&mut body, "request_payload", None, "text/xml", b"");
                part(&mut body, "tableau_file", Some("file"), "application/octet-stream", &chunk);
                finish(&mut body);
                self.send(call, |http, base| {
                    http.put(format!("{base}/fileUploads/{session}"))
                        .header(reqwest::header::CONTENT_TYPE, MULTIPART)
                        .body(body.clone())
                })
                .await?;
            }
            if ended {
                break;
            }
        }
        Ok(session)
    }

    /// Where a publish job stands. Finished means `completedAt` is set; success is finish code 0.
    pub async fn job_state(&self, job: &Job) -> Result<JobState, TableauError> {
        let call = "publish job";
        let response = self.send(call, |http, base| http.get(format!("{base}/jobs/{}", job.id))).await?;
        let text = response.text().await.map_err(|e| transport(call, e))?;
        let info = xml::job(&text).map_err(|e| transport(call, e))?;
        Ok(match (info.completed, info.finish_code.as_deref()) {
            (false, _) => JobState::Running,
            (true, Some("0")) => JobState::Succeeded,
            (true, code) => JobState::Failed(format!(
                "the publish job ended with finish code {}{}",
                code.unwrap_or("?"),
                if info.notes.is_empty() { String::new() } else { format!(": {}", info.notes.join("; ")) }
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_have_the_parts_tableau_reads() {
        let mut body = Vec::new();
        let secret = ConnectionCredentials {
            server_address: Some("db.example".into()),
            server_port: None,
            username: "ro".into(),
            password: "p<w>".into(),
            embed: true,
        };
        part(&mut body, "request_payload", None, "text/xml", publish_payload("Q1 & Q2", "p1", &[secret]).as_bytes());
        part(&mut body, "tableau_workbook", Some("Q1 \"x\".twbx"), "application/octet-stream", b"PK\x03\x04");
        finish(&mut body);
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{BOUNDARY}\r\nContent-Disposition: name=\"request_payload\"")));
        assert!(text.contains("name=\"Q1 &amp; Q2\""), "{text}");
        assert!(text.contains("<connection serverAddress=\"db.example\"><connectionCredentials name=\"ro\" password=\"p&lt;w&gt;\" embed=\"true\"/></connection>"), "{text}");
        assert!(text.contains("name=\"tableau_workbook\"; filename=\"Q1 _x_.twbx\""), "{text}");
        assert!(text.ends_with(&format!("\r\n--{BOUNDARY}--\r\n")));
        assert!(MULTIPART.ends_with(BOUNDARY));
    }
}
