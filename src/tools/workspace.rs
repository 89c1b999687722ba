//! Workspace tools: `create_workspace`, `delete_workspace`, `write_file`, `read_file`,
//! `list_files`, `delete_file`; and what `execute_code` and `run_tests` share to take
//! `workspace_id` and `files` and report the files a run created or changed. The work
//! is done by [`crate::workspace`]; these adapt arguments, errors and results.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Tools};
use crate::audit::{CallContext, Transport};
use crate::auth::Endpoint;
use crate::call::{Attachment, Hints, RestMethod, RestRoute, Tool, ToolResponse, ToolSpec};
use crate::workspace::{
    EntryKind, FileInfo, FsError, InputFile, Picture, RunChanges, WorkspaceError, WorkspaceInfo,
    WorkspacePath,
};

/// The URI of a workspace file as an MCP resource.
pub fn file_uri(workspace_id: &str, path: &WorkspacePath) -> String {
    format!(
        "sandgraph://workspaces/{workspace_id}/files/{}",
        path.encoded()
    )
}

/// The REST path that downloads a workspace file.
pub fn download_path(workspace_id: &str, path: &WorkspacePath) -> String {
    format!("/workspaces/{workspace_id}/files/{}", path.encoded())
}

/// The MCP resource template of workspace files (RFC 6570).
pub const FILE_URI_TEMPLATE: &str = "sandgraph://workspaces/{workspace_id}/files/{+path}";

/// A workspace failure as a tool error; `field` names the argument a path came in.
pub fn tool_error(err: WorkspaceError, field: &'static str) -> ToolError {
    match err {
        WorkspaceError::BadId(_) => ToolError::invalid("workspace_id", err.to_string()),
        WorkspaceError::NotFound(_) | WorkspaceError::DeletedDuringCall(_) => ToolError::NotFound {
            detail: err.to_string(),
        },
        WorkspaceError::Path(detail) => ToolError::invalid(field, detail),
        WorkspaceError::Fs(FsError::NotFound(_)) => ToolError::NotFound {
            detail: err.to_string(),
        },
        WorkspaceError::Fs(FsError::TooLarge { .. }) => ToolError::TooLarge {
            detail: err.to_string(),
        },
        WorkspaceError::Fs(FsError::Io(io)) => ToolError::Internal(io.into()),
        WorkspaceError::Fs(_) => ToolError::invalid(field, err.to_string()),
        WorkspaceError::Quota(detail) => ToolError::QuotaExceeded { detail },
        WorkspaceError::Cancelled => ToolError::Cancelled { record: None },
        WorkspaceError::Internal(inner) => ToolError::Internal(inner),
    }
}

/// Check a path argument.
pub fn parse_path(field: &'static str, raw: &str) -> Result<WorkspacePath, ToolError> {
    WorkspacePath::parse(raw).map_err(|detail| ToolError::invalid(field, detail))
}

/// One file to write before a run (or with `write_file`): exactly one of `content`
/// (UTF-8 text) and `content_base64` (any bytes).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// Path relative to the working directory, `/`-separated (e.g. `data/in.csv`); no
    /// `..`, no absolute paths.
    pub path: String,
    /// The file's text.
    #[serde(default)]
    pub content: Option<String>,
    /// The file's bytes, base64 (standard alphabet, padded).
    #[serde(default)]
    pub content_base64: Option<String>,
}

/// Decode the content of one file argument.
fn decode_content(
    tools: &Tools,
    field: &'static str,
    label: &str,
    content: Option<String>,
    content_base64: Option<String>,
) -> Result<Vec<u8>, ToolError> {
    let bytes = match (content, content_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| {
                ToolError::invalid(field, format!("{label}content_base64 is not base64: {e}"))
            })?,
        (Some(_), Some(_)) => {
            return Err(ToolError::invalid(
                field,
                format!("{label}give either content or content_base64, not both"),
            ));
        }
        (None, None) => {
            return Err(ToolError::invalid(
                field,
                format!("{label}give content (text) or content_base64 (bytes)"),
            ));
        }
    };
    let limit = tools.workspaces.settings().max_file_bytes;
    if bytes.len() as u64 > limit {
        return Err(ToolError::TooLarge {
            detail: format!(
                "{label}the file is {} bytes; the limit is {limit} bytes",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// Check the `files` argument of a run.
pub fn input_files(tools: &Tools, files: Vec<FileInput>) -> Result<Vec<InputFile>, ToolError> {
    let max_files = tools.workspaces.settings().max_files;
    if files.len() as u64 > max_files {
        return Err(ToolError::invalid(
            "files",
            format!("{} files given; at most {max_files} may be", files.len()),
        ));
    }
    files
        .into_iter()
        .enumerate()
        .map(|(i, file)| {
            let label = format!("files[{i}]: ");
            let path = WorkspacePath::parse(&file.path)
                .map_err(|detail| ToolError::invalid("files", format!("{label}{detail}")))?;
            let bytes = decode_content(tools, "files", &label, file.content, file.content_base64)?;
            Ok(InputFile { path, bytes })
        })
        .collect()
}

/// A file a run created or changed, as its result lists it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct OutputFile {
    /// Path from the working directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    /// MIME type (from the file name).
    pub mime: String,
    /// `created` or `modified`.
    pub change: String,
    /// The MCP resource to read it with (`resources/read`), for a run in a workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The REST path that downloads it, for a run in a workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_path: Option<String>,
    /// Its text, for a small text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The files part of a run's result.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct FilesOut {
    /// The workspace the run used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Regular files the run created or changed (present for runs in a workspace or
    /// given `files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<OutputFile>>,
    /// Paths the run removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_files: Vec<String>,
    /// Whether more files changed than `files` lists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub files_truncated: bool,
    /// Notes on pictures not returned as images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_notes: Vec<String>,
    /// Pictures to return as image content (MCP only; never in the JSON).
    #[serde(skip)]
    #[schemars(skip)]
    pub pictures: Vec<(String, Picture)>,
}

impl FilesOut {
    /// The result's files part from what a run did in `workspace_id` (or in a directory
    /// of its own).
    pub fn from_changes(workspace_id: Option<&str>, changes: RunChanges) -> Self {
        let files = changes
            .changed
            .into_iter()
            .map(|changed| {
                let path = WorkspacePath::parse(&changed.info.path).ok();
                let link = |f: fn(&str, &WorkspacePath) -> String| {
                    workspace_id.zip(path.as_ref()).map(|(id, p)| f(id, p))
                };
                OutputFile {
                    uri: link(file_uri),
                    download_path: link(download_path),
                    path: changed.info.path,
                    size: changed.info.size,
                    sha256: changed.info.sha256,
                    mime: changed.info.mime,
                    change: if changed.created {
                        "created"
                    } else {
                        "modified"
                    }
                    .to_owned(),
                    text: changed.text,
                }
            })
            .collect();
        Self {
            workspace_id: workspace_id.map(str::to_owned),
            files: Some(files),
            removed_files: changes.removed,
            files_truncated: changes.truncated,
            file_notes: changes.picture_notes,
            pictures: changes.pictures,
        }
    }

    /// Resource links and pictures for MCP.
    pub fn attachments(&mut self) -> Vec<Attachment> {
        let mut out: Vec<Attachment> = std::mem::take(&mut self.pictures)
            .into_iter()
            .map(|(_, picture)| Attachment::Image {
                mime: picture.mime,
                data: picture.data,
            })
            .collect();
        for file in self.files.iter().flatten() {
            if let Some(uri) = &file.uri {
                out.push(Attachment::Link {
                    uri: uri.clone(),
                    name: file.path.clone(),
                    mime: file.mime.clone(),
                    size: file.size,
                });
            }
        }
        out
    }

    /// The lines an LLM reads about the files (appended to a run's text).
    pub fn render(&self, text: &mut String) {
        let Some(files) = &self.files else {
            return;
        };
        if let Some(id) = &self.workspace_id {
            text.push_str(&format!("workspace: {id}\n"));
        }
        if files.is_empty() && self.removed_files.is_empty() {
            text.push_str("files: none created or changed\n");
        }
        for file in files {
            text.push_str(&format!(
                "{} {} ({} bytes, {}, sha256 {})\n",
                file.change, file.path, file.size, file.mime, file.sha256
            ));
        }
        for removed in &self.removed_files {
            text.push_str(&format!("removed {removed}\n"));
        }
        if self.files_truncated {
            text.push_str("(more files changed than are listed)\n");
        }
        for note in &self.file_notes {
            text.push_str(&format!("note: {note}\n"));
        }
        for file in files {
            if let Some(body) = &file.text {
                text.push_str(&format!("--- {} ---\n{body}", file.path));
                if !body.ends_with('\n') {
                    text.push('\n');
                }
            }
        }
    }

    /// The audit detail of a run with files: where, and how many changed (never names
    /// or contents beyond the count).
    pub fn audit_detail(&self) -> Option<String> {
        let files = self.files.as_ref()?;
        let place = match &self.workspace_id {
            Some(id) => format!("workspace {id}"),
            None => "own directory".to_owned(),
        };
        Some(format!(
            "{place}: {} files created or changed, {} removed",
            files.len(),
            self.removed_files.len()
        ))
    }
}

/// Whether pictures are worth preparing for this call (only MCP shows them).
pub fn wants_pictures(ctx: &CallContext) -> bool {
    ctx.transport != Transport::Rest
}

const fn workspace_hints(read_only: bool, destructive: bool, idempotent: bool) -> Hints {
    Hints {
        read_only,
        destructive,
        idempotent,
        open_world: false,
    }
}

// ---------------------------------------------------------------------------------------
// create_workspace

/// Arguments of `create_workspace` (none).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {}

impl ToolResponse for WorkspaceInfo {
    fn render(&self) -> Option<String> {
        Some(format!(
            "workspace_id: {}\nexpires_at: {} (idle TTL {} s; every call naming it extends it)\nquota: {} bytes, {} files\n",
            self.workspace_id, self.expires_at, self.ttl_seconds, self.quota_bytes, self.max_files
        ))
    }

    fn audit_detail(&self) -> Option<String> {
        Some(format!("workspace {}", self.workspace_id))
    }
}

/// `create_workspace`.
pub struct CreateWorkspace;

/// Name, role, hints and route of `create_workspace`.
pub static CREATE_WORKSPACE_SPEC: ToolSpec = ToolSpec {
    name: "create_workspace",
    title: "Create a workspace",
    description: "Create a private directory that lasts across calls; returns {workspace_id, \
expires_at, quota_bytes}. Pass workspace_id to execute_code/run_tests (the run's working \
directory is the workspace) and to write_file/read_file/list_files/delete_file. It expires after \
an idle TTL (default 30 min; every call naming it extends it); only you can use it.",
    endpoint: Endpoint::Workspaces,
    hints: workspace_hints(false, false, false),
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/workspaces",
        status: 201,
    },
};

#[async_trait::async_trait]
impl Tool for CreateWorkspace {
    type Request = CreateWorkspaceRequest;
    type Response = WorkspaceInfo;

    fn spec(&self) -> &'static ToolSpec {
        &CREATE_WORKSPACE_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        _request: CreateWorkspaceRequest,
    ) -> Result<WorkspaceInfo, ToolError> {
        tools
            .workspaces
            .create(&ctx.caller.id)
            .await
            .map_err(|e| tool_error(e, "workspace_id"))
    }
}

// ---------------------------------------------------------------------------------------
// delete_workspace

/// Arguments of `delete_workspace`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWorkspaceRequest {
    /// The workspace (from `create_workspace`).
    pub workspace_id: String,
}

/// What `delete_workspace` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WorkspaceDeleted {
    /// The workspace now gone.
    pub deleted: String,
}

impl ToolResponse for WorkspaceDeleted {
    fn audit_detail(&self) -> Option<String> {
        Some(format!("workspace {}", self.deleted))
    }
}

/// `delete_workspace`.
pub struct DeleteWorkspace;

/// Name, role, hints and route of `delete_workspace`.
pub static DELETE_WORKSPACE_SPEC: ToolSpec = ToolSpec {
    name: "delete_workspace",
    title: "Delete a workspace",
    description: "Delete a workspace and all its files at once (a run in it is stopped).",
    endpoint: Endpoint::Workspaces,
    hints: workspace_hints(false, true, true),
    rest: RestRoute {
        method: RestMethod::Delete,
        path: "/workspaces/{workspace_id}",
        status: 204,
    },
};

#[async_trait::async_trait]
impl Tool for DeleteWorkspace {
    type Request = DeleteWorkspaceRequest;
    type Response = WorkspaceDeleted;

    fn spec(&self) -> &'static ToolSpec {
        &DELETE_WORKSPACE_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: DeleteWorkspaceRequest,
    ) -> Result<WorkspaceDeleted, ToolError> {
        tools
            .workspaces
            .delete(&ctx.caller.id, &request.workspace_id)
            .await
            .map_err(|e| tool_error(e, "workspace_id"))?;
        Ok(WorkspaceDeleted {
            deleted: request.workspace_id,
        })
    }
}

// ---------------------------------------------------------------------------------------
// write_file

/// Arguments of `write_file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileRequest {
    /// The workspace.
    pub workspace_id: String,
    /// Path relative to the workspace root, `/`-separated (parents are created); no
    /// `..`, no absolute paths.
    pub path: String,
    /// The file's text.
    #[serde(default)]
    pub content: Option<String>,
    /// The file's bytes, base64.
    #[serde(default)]
    pub content_base64: Option<String>,
}

/// A file written, or read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileWritten {
    /// The workspace.
    pub workspace_id: String,
    /// Path, size, hash and type.
    #[serde(flatten)]
    pub file: FileInfo,
    /// The MCP resource that reads it back.
    pub uri: String,
}

impl ToolResponse for FileWritten {
    fn render(&self) -> Option<String> {
        Some(format!(
            "wrote {} ({} bytes, sha256 {}) in {}\n",
            self.file.path, self.file.size, self.file.sha256, self.workspace_id
        ))
    }

    fn audit_detail(&self) -> Option<String> {
        Some(format!(
            "workspace {}: {} bytes",
            self.workspace_id, self.file.size
        ))
    }
}

/// `write_file`.
pub struct WriteFile;

/// Name, role, hints and route of `write_file`.
pub static WRITE_FILE_SPEC: ToolSpec = ToolSpec {
    name: "write_file",
    title: "Write a file into a workspace",
    description: "Write a file into a workspace: `content` for text or `content_base64` for \
bytes. Parent directories are created; an existing file is replaced atomically. Paths are \
relative (no `..`, no leading `/`).",
    endpoint: Endpoint::Workspaces,
    hints: workspace_hints(false, true, true),
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/workspaces/{workspace_id}/files",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for WriteFile {
    type Request = WriteFileRequest;
    type Response = FileWritten;

    fn spec(&self) -> &'static ToolSpec {
        &WRITE_FILE_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: WriteFileRequest,
    ) -> Result<FileWritten, ToolError> {
        let path = parse_path("path", &request.path)?;
        let bytes = decode_content(
            tools,
            "content",
            "",
            request.content,
            request.content_base64,
        )?;
        let file = tools
            .workspaces
            .write_file(
                &ctx.caller.id,
                &request.workspace_id,
                InputFile {
                    path: path.clone(),
                    bytes,
                },
                &ctx.cancel,
            )
            .await
            .map_err(|e| tool_error(e, "path"))?;
        Ok(FileWritten {
            uri: file_uri(&request.workspace_id, &path),
            workspace_id: request.workspace_id,
            file,
        })
    }
}

// ---------------------------------------------------------------------------------------
// read_file

/// Arguments of `read_file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileRequest {
    /// The workspace.
    pub workspace_id: String,
    /// Path relative to the workspace root.
    pub path: String,
}

/// A file's content: text when it is UTF-8, else base64.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileContent {
    /// The workspace.
    pub workspace_id: String,
    /// Path, size, hash and type.
    #[serde(flatten)]
    pub file: FileInfo,
    /// The text, if the file is UTF-8 (and not a picture or other binary type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The bytes, base64, if the file is not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// The MCP resource for the same file.
    pub uri: String,
}

impl ToolResponse for FileContent {
    fn render(&self) -> Option<String> {
        let head = format!(
            "{} ({} bytes, {}, sha256 {})\n",
            self.file.path, self.file.size, self.file.mime, self.file.sha256
        );
        Some(match &self.content {
            Some(text) => format!("{head}{text}"),
            None => format!(
                "{head}binary content: in content_base64, or read {} as a resource\n",
                self.uri
            ),
        })
    }

    fn audit_detail(&self) -> Option<String> {
        Some(format!(
            "workspace {}: {} bytes",
            self.workspace_id, self.file.size
        ))
    }
}

/// Whether bytes of this type are text to show as text.
fn textual(mime: &str, bytes: &[u8]) -> Option<String> {
    let binary_type = mime.starts_with("image/") && mime != "image/svg+xml"
        || mime.starts_with("audio/")
        || mime.starts_with("video/")
        || matches!(
            mime,
            "application/zip" | "application/gzip" | "application/pdf" | "application/x-tar"
        );
    if binary_type {
        return None;
    }
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// `read_file`.
pub struct ReadFile;

/// Name, role, hints and route of `read_file`.
pub static READ_FILE_SPEC: ToolSpec = ToolSpec {
    name: "read_file",
    title: "Read a file from a workspace",
    description: "Read a file from a workspace: `content` for text, `content_base64` for other \
bytes, with size, sha256 and mime. Symbolic links are never followed.",
    endpoint: Endpoint::Workspaces,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/workspaces/{workspace_id}/file",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for ReadFile {
    type Request = ReadFileRequest;
    type Response = FileContent;

    fn spec(&self) -> &'static ToolSpec {
        &READ_FILE_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: ReadFileRequest,
    ) -> Result<FileContent, ToolError> {
        let path = parse_path("path", &request.path)?;
        let limit = tools.workspaces.settings().max_file_bytes;
        let (file, bytes) = tools
            .workspaces
            .read_file(
                &ctx.caller.id,
                &request.workspace_id,
                path.clone(),
                limit,
                &ctx.cancel,
            )
            .await
            .map_err(|e| tool_error(e, "path"))?;
        let content = textual(&file.mime, &bytes);
        let content_base64 = content
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(&bytes));
        Ok(FileContent {
            uri: file_uri(&request.workspace_id, &path),
            workspace_id: request.workspace_id,
            file,
            content,
            content_base64,
        })
    }
}

// ---------------------------------------------------------------------------------------
// list_files

/// Arguments of `list_files`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesRequest {
    /// The workspace.
    pub workspace_id: String,
}

/// One entry of a workspace.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListedEntry {
    /// Path from the workspace root.
    pub path: String,
    /// `file`, `directory`, `symlink` (never followed) or `other`.
    pub kind: EntryKind,
    /// Size in bytes (of the link itself for a link).
    pub size: u64,
    /// MIME type, for a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// The MCP resource that reads it, for a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// A workspace's entries and state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileListing {
    /// The workspace, its expiry, quotas and usage.
    pub workspace: WorkspaceInfo,
    /// Every entry, sorted by path.
    pub entries: Vec<ListedEntry>,
    /// Whether the listing stopped early (more entries than the file quota).
    pub truncated: bool,
}

impl ToolResponse for FileListing {
    fn render(&self) -> Option<String> {
        let w = &self.workspace;
        let mut text = format!(
            "{}: {} of {} bytes, {} of {} files; expires {}\n",
            w.workspace_id, w.used_bytes, w.quota_bytes, w.used_files, w.max_files, w.expires_at
        );
        for entry in &self.entries {
            let kind = match entry.kind {
                EntryKind::File => "file",
                EntryKind::Directory => "dir ",
                EntryKind::Symlink => "link",
                EntryKind::Other => "othr",
            };
            text.push_str(&format!("{kind} {:>10} {}\n", entry.size, entry.path));
        }
        Some(text)
    }

    fn audit_detail(&self) -> Option<String> {
        Some(format!(
            "workspace {}: {} entries",
            self.workspace.workspace_id,
            self.entries.len()
        ))
    }
}

/// `list_files`.
pub struct ListFiles;

/// Name, role, hints and route of `list_files`.
pub static LIST_FILES_SPEC: ToolSpec = ToolSpec {
    name: "list_files",
    title: "List a workspace's files",
    description: "List every file, directory and symbolic link in a workspace (links are \
listed, never followed), with the workspace's usage, quotas and expiry.",
    endpoint: Endpoint::Workspaces,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/workspaces/{workspace_id}/files",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for ListFiles {
    type Request = ListFilesRequest;
    type Response = FileListing;

    fn spec(&self) -> &'static ToolSpec {
        &LIST_FILES_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: ListFilesRequest,
    ) -> Result<FileListing, ToolError> {
        let (workspace, tree) = tools
            .workspaces
            .list(&ctx.caller.id, &request.workspace_id, &ctx.cancel)
            .await
            .map_err(|e| tool_error(e, "workspace_id"))?;
        let entries = tree
            .entries
            .into_iter()
            .map(|entry| {
                let file = entry.kind == EntryKind::File;
                let uri = file
                    .then(|| WorkspacePath::parse(&entry.path).ok())
                    .flatten()
                    .map(|p| file_uri(&request.workspace_id, &p));
                ListedEntry {
                    mime: file.then(|| crate::workspace::mime_of(&entry.path)),
                    uri,
                    path: entry.path,
                    kind: entry.kind,
                    size: entry.size,
                }
            })
            .collect();
        Ok(FileListing {
            workspace,
            entries,
            truncated: tree.truncated,
        })
    }
}

// ---------------------------------------------------------------------------------------
// delete_file

/// Arguments of `delete_file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteFileRequest {
    /// The workspace.
    pub workspace_id: String,
    /// The file, link or directory (removed with everything in it) to delete.
    pub path: String,
}

/// What `delete_file` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileDeleted {
    /// The workspace.
    pub workspace_id: String,
    /// The path now gone.
    pub deleted: String,
}

impl ToolResponse for FileDeleted {
    fn audit_detail(&self) -> Option<String> {
        Some(format!("workspace {}", self.workspace_id))
    }
}

/// `delete_file`.
pub struct DeleteFile;

/// Name, role, hints and route of `delete_file`.
pub static DELETE_FILE_SPEC: ToolSpec = ToolSpec {
    name: "delete_file",
    title: "Delete a file from a workspace",
    description: "Delete a file, symbolic link (not its target) or directory (with everything \
in it) from a workspace.",
    endpoint: Endpoint::Workspaces,
    hints: workspace_hints(false, true, true),
    rest: RestRoute {
        method: RestMethod::Delete,
        path: "/workspaces/{workspace_id}/files/{*path}",
        status: 204,
    },
};

#[async_trait::async_trait]
impl Tool for DeleteFile {
    type Request = DeleteFileRequest;
    type Response = FileDeleted;

    fn spec(&self) -> &'static ToolSpec {
        &DELETE_FILE_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: DeleteFileRequest,
    ) -> Result<FileDeleted, ToolError> {
        let path = parse_path("path", &request.path)?;
        tools
            .workspaces
            .delete_file(
                &ctx.caller.id,
                &request.workspace_id,
                path.clone(),
                &ctx.cancel,
            )
            .await
            .map_err(|e| tool_error(e, "path"))?;
        Ok(FileDeleted {
            workspace_id: request.workspace_id,
            deleted: path.to_string(),
        })
    }
}

/// Read a workspace file for a resource read or a download: (type, bytes). Audited by
/// the caller as one call on [`Endpoint::Workspaces`].
pub async fn read_for_download(
    tools: &Tools,
    ctx: &CallContext,
    workspace_id: &str,
    path: Result<WorkspacePath, String>,
) -> Result<(FileInfo, Vec<u8>), ToolError> {
    let path = path.map_err(|detail| ToolError::invalid("path", detail))?;
    let limit = tools.workspaces.settings().quota_bytes;
    tools
        .workspaces
        .read_file(&ctx.caller.id, workspace_id, path, limit, &ctx.cancel)
        .await
        .map_err(|e| tool_error(e, "path"))
}

/// Whether bytes read as a resource are text (else a blob).
pub fn resource_text(mime: &str, bytes: &[u8]) -> Option<String> {
    textual(mime, bytes)
}
