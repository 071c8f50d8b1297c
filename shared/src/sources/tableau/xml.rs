//! Tableau's REST answers (XML in the `http://tableau.com/api` namespace) read into plain
//! structs, and the few request bodies Backline sends. Elements are found by local name, so a
//! server that changes the namespace's schema version still reads.

use roxmltree::{Document, Node};

#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub token: String,
    pub site_id: String,
    pub site_content_url: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: String,
    pub name: String,
    /// "" is the Default site.
    pub content_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workbook {
    pub id: String,
    pub name: String,
    /// `None` for a workbook in a personal space.
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub owner_id: Option<String>,
    /// Present when listed with `fields=_all_`.
    pub owner_name: Option<String>,
    /// As the server sent them: some servers send dates that do not exist (`2016-06-31`).
    pub created_at: String,
    pub updated_at: String,
    pub description: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
}

/// One revision of a workbook, as `revisions` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub number: u32,
    /// Listed, but its content is gone.
    pub deleted: bool,
    /// The workbook as it is now.
    pub current: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub page_number: u32,
    pub page_size: u32,
    pub total: u32,
}

/// `<error code=... ><summary/><detail/></error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub summary: String,
    pub detail: String,
}

fn parse(text: &str) -> Result<Document<'_>, String> {
    Document::parse(text).map_err(|e| format!("not XML: {e}"))
}

fn children<'a, 'input>(node: Node<'a, 'input>, name: &'a str) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |n| n.is_element() && n.tag_name().name() == name)
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &'a str) -> Option<Node<'a, 'input>> {
    children(node, name).next()
}

fn descendant<'a, 'input>(doc: &'a Document<'input>, name: &str) -> Option<Node<'a, 'input>> {
    doc.descendants().find(|n| n.is_element() && n.tag_name().name() == name)
}

fn attr(node: Node<'_, '_>, name: &str) -> Option<String> {
    node.attribute(name).map(str::to_string)
}

fn required(node: Node<'_, '_>, name: &str) -> Result<String, String> {
    attr(node, name).ok_or_else(|| format!("<{}> has no `{name}`", node.tag_name().name()))
}

pub fn api_version(text: &str) -> Result<String, String> {
    let doc = parse(text)?;
    descendant(&doc, "restApiVersion")
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .ok_or_else(|| "serverinfo has no restApiVersion".into())
}

pub fn credentials(text: &str) -> Result<Credentials, String> {
    let doc = parse(text)?;
    let credentials = descendant(&doc, "credentials").ok_or("the answer has no <credentials>")?;
    let site = child(credentials, "site").ok_or("<credentials> has no <site>")?;
    Ok(Credentials {
        token: required(credentials, "token")?,
        site_id: required(site, "id")?,
        site_content_url: attr(site, "contentUrl").unwrap_or_default(),
        user_id: child(credentials, "user").and_then(|u| attr(u, "id")).unwrap_or_default(),
    })
}

pub fn pagination(text: &str) -> Result<Option<Pagination>, String> {
    let doc = parse(text)?;
    let Some(node) = descendant(&doc, "pagination") else { return Ok(None) };
    let number = |name: &str| -> Result<u32, String> {
        required(node, name)?.parse().map_err(|_| format!("<pagination> `{name}` is not a number"))
    };
    Ok(Some(Pagination {
        page_number: number("pageNumber")?,
        page_size: number("pageSize")?,
        total: number("totalAvailable")?,
    }))
}

pub fn sites(text: &str) -> Result<Vec<Site>, String> {
    let doc = parse(text)?;
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "site")
        .map(|n| {
            Ok(Site {
                id: required(n, "id")?,
                name: required(n, "name")?,
                content_url: attr(n, "contentUrl").unwrap_or_default(),
            })
        })
        .collect()
}

pub fn projects(text: &str) -> Result<Vec<Project>, String> {
    let doc = parse(text)?;
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "project")
        .map(|n| {
            Ok(Project {
                id: required(n, "id")?,
                name: required(n, "name")?,
                parent_id: attr(n, "parentProjectId").filter(|p| !p.is_empty()),
            })
        })
        .collect()
}

pub fn workbooks(text: &str) -> Result<Vec<Workbook>, String> {
    let doc = parse(text)?;
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "workbook")
        .map(|n| {
            let project = child(n, "project");
            let owner = child(n, "owner");
            let tags = child(n, "tags")
                .map(|t| children(t, "tag").filter_map(|tag| attr(tag, "label")).collect())
                .unwrap_or_default();
            Ok(Workbook {
                id: required(n, "id")?,
                name: required(n, "name")?,
                project_id: project.and_then(|p| attr(p, "id")),
                project_name: project.and_then(|p| attr(p, "name")),
                owner_id: owner.and_then(|o| attr(o, "id")),
                owner_name: owner.and_then(|o| attr(o, "name")),
                created_at: attr(n, "createdAt").unwrap_or_default(),
                updated_at: attr(n, "updatedAt").unwrap_or_default(),
                description: attr(n, "description").unwrap_or_default(),
                tags,
            })
        })
        .collect()
}

/// An asynchronous job (`<job id progress finishCode completedAt>`). It is finished when it has
/// `completedAt`; some servers send `finishCode` earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: String,
    pub completed: bool,
    pub finish_code: Option<String>,
    pub notes: Vec<String>,
}

pub fn job(text: &str) -> Result<JobInfo, String> {
    let doc = parse(text)?;
    let job = descendant(&doc, "job").ok_or("the answer has no <job>")?;
    let notes = job
        .descendants()
        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "notes" | "statusNote"))
        .filter_map(|n| attr(n, "text").or_else(|| n.text().map(|t| t.trim().to_string())))
        .filter(|t| !t.is_empty())
        .collect();
    Ok(JobInfo {
        id: required(job, "id")?,
        completed: job.attribute("completedAt").is_some_and(|t| !t.is_empty()),
        finish_code: attr(job, "finishCode"),
        notes,
    })
}

/// The upload session of a chunked publish.
pub fn upload_session(text: &str) -> Result<String, String> {
    let doc = parse(text)?;
    let upload = descendant(&doc, "fileUpload").ok_or("the answer has no <fileUpload>")?;
    required(upload, "uploadSessionId")
}

pub fn users(text: &str) -> Result<Vec<User>, String> {
    let doc = parse(text)?;
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "user")
        .map(|n| Ok(User { id: required(n, "id")?, name: required(n, "name")? }))
        .collect()
}

pub fn revisions(text: &str) -> Result<Vec<Revision>, String> {
    let doc = parse(text)?;
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "revision")
        .map(|n| {
            let number = required(n, "revisionNumber")?;
            Ok(Revision {
                number: number.parse().map_err(|_| format!("revisionNumber {number:?} is not a number"))?,
                deleted: n.attribute("deleted") == Some("true"),
                current: n.attribute("current") == Some("true"),
            })
        })
        .collect()
}

/// The error a failed call answered with, if its body is Tableau's error document.
pub fn api_error(text: &str) -> Option<ApiError> {
    let doc = Document::parse(text).ok()?;
    let error = descendant(&doc, "error")?;
    let text_of = |name: &str| child(error, name).and_then(|n| n.text()).unwrap_or_default().trim().to_string();
    Some(ApiError {
        code: attr(error, "code").unwrap_or_default(),
        summary: text_of("summary"),
        detail: text_of("detail"),
    })
}

/// Text for an XML attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The sign-in request: a personal access token or a name and password, on a site.
pub fn sign_in_request(login: &super::client::Login, site_content_url: &str) -> String {
    let credentials = match login {
        super::client::Login::Token { name, secret } => {
            format!("personalAccessTokenName=\"{}\" personalAccessTokenSecret=\"{}\"", escape(name), escape(secret))
        }
        super::client::Login::Password { name, password } => {
            format!("name=\"{}\" password=\"{}\"", escape(name), escape(password))
        }
    };
    format!(
        "<tsRequest><credentials {credentials}><site contentUrl=\"{}\"/></credentials></tsRequest>",
        escape(site_content_url)
    )
}

/// The file name a `Content-Disposition` header names, in either form real servers send:
/// `filename="X.twbx"` or `filename*=UTF-8''X%2C%20Y.twbx`.
pub fn disposition_filename(header: &str) -> Option<String> {
    let mut plain = None;
    for part in header.split(';').map(str::trim) {
        if let Some(value) = part.strip_prefix("filename*=") {
            let encoded = value.split_once("''").map_or(value, |(_, v)| v);
            return percent_encoding::percent_decode_str(encoded.trim_matches('"'))
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned());
        }
        if let Some(value) = part.strip_prefix("filename=") {
            plain = Some(value.trim_matches('"').to_string());
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../shared/fixtures/tableau/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn real_answers_read() {
        assert_eq!(api_version(&fixture("server_info_get.xml")).unwrap(), "3.10");
        let credentials = credentials(&fixture("auth_sign_in.xml")).unwrap();
        assert_eq!(
            (credentials.token.as_str(), credentials.site_content_url.as_str()),
            ("eIX6mvFsqyansa4KqEI1UwOpS8ggRs2l", "Samples")
        );
        let sites = sites(&fixture("site_get.xml")).unwrap();
        assert_eq!(sites.iter().map(|s| s.content_url.as_str()).collect::<Vec<_>>(), ["", "Samples"]);
        let page = pagination(&fixture("site_get.xml")).unwrap().unwrap();
        assert_eq!((page.page_number, page.page_size, page.total), (1, 100, 2));
        let projects = projects(&fixture("project_get.xml")).unwrap();
        assert!(projects.iter().any(|p| p.parent_id.is_some()), "{projects:?}");
        let listed = workbooks(&fixture("workbook_get.xml")).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].tags, ["Safari", "Sample"]);
        assert_eq!(listed[0].project_name.as_deref(), Some("default"));
        assert!(workbooks(&fixture("workbook_get_empty.xml")).unwrap().is_empty());
        let revisions = revisions(&fixture("workbook_revision.xml")).unwrap();
        let kept: Vec<(u32, bool)> = revisions.iter().map(|r| (r.number, r.current)).collect();
        assert_eq!(kept, [(1, false), (2, false), (3, true)]);
        let error = api_error(&fixture("auth_sign_in_error.xml")).unwrap();
        assert_eq!(error.code, "401001");
    }

    #[test]
    fn a_job_is_finished_by_completed_at_not_finish_code() {
        let running = job(&fixture("workbook_publish_async.xml")).unwrap();
        assert!(!running.completed && running.finish_code.as_deref() == Some("1"), "{running:?}");
        assert!(!job(&fixture("job_get_by_id_inprogress.xml")).unwrap().completed);
        let done = job(&fixture("job_get_by_id_completed.xml")).unwrap();
        assert!(done.completed && done.notes.iter().any(|n| n.contains("notes")), "{done:?}");
        assert_eq!(
            upload_session(&fixture("fileupload_initialize.xml")).unwrap(),
            "7720:170fe6b1c1c7422dadff20f944d58a52-1:0"
        );
    }

    #[test]
    fn a_workbook_in_a_personal_space_has_no_project() {
        let text = r#"<tsResponse xmlns="http://tableau.com/api"><workbooks><workbook id="w" name="Mine" createdAt="2016-06-31T00:00:00Z" updatedAt="2016-06-31T00:00:00Z"><owner id="u" name="Ann"/></workbook></workbooks></tsResponse>"#;
        let workbook = &workbooks(text).unwrap()[0];
        assert_eq!((workbook.project_id.as_deref(), workbook.owner_name.as_deref()), (None, Some("Ann")));
        assert_eq!(workbook.updated_at, "2016-06-31T00:00:00Z", "an impossible date is kept as it came");
    }

    #[test]
    fn both_content_disposition_forms_name_the_file() {
        assert_eq!(
            disposition_filename(r#"name="tableau_workbook"; filename="Sales.twbx""#).as_deref(),
            Some("Sales.twbx")
        );
        assert_eq!(
            disposition_filename("name=\"tableau_workbook\"; filename*=UTF-8''Q1%2C%20Q2%20%C3%BCber.twb").as_deref(),
            Some("Q1, Q2 über.twb")
        );
        assert_eq!(disposition_filename("attachment"), None);
    }

    #[test]
    fn requests_escape_what_they_carry() {
        let login = super::super::client::Login::Token { name: "a\"b".into(), secret: "<s&>".into() };
        let body = sign_in_request(&login, "");
        assert!(body.contains("personalAccessTokenName=\"a&quot;b\"") && body.contains("&lt;s&amp;&gt;"), "{body}");
        assert!(roxmltree::Document::parse(&body).is_ok());
    }
}
