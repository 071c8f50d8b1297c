//! Writing a stream of unknown length into S3 without touching local disk: one PutObject when
//! it fits in a part, else a multipart upload whose parts are sent as they fill. Memory is one
//! part, so a 2 GB workbook streams through a Lambda. A failed upload is aborted, never left
//! to bill its parts.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};
use futures::{Stream, StreamExt};

use super::error_text;
use super::s3::encode_tagging;
use super::written_once::{Attempt, no_retries, write_once};

/// Parts of 16 MiB: 10,000 of them (S3's limit) hold 160 GiB.
pub const PART_SIZE: usize = 16 << 20;

pub struct Destination<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub tags: &'a [(String, String)],
    pub storage_class: Option<&'a str>,
    pub content_type: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    pub bytes: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// Sends `body` to `to`; `part_size` is how much is held at once.
pub async fn stream_to_s3<S, B, E>(
    s3: &aws_sdk_s3::Client,
    to: &Destination<'_>,
    body: S,
    part_size: usize,
) -> Result<Uploaded, String>
where
    S: Stream<Item = Result<B, E>> + Send,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buffer: Vec<u8> = Vec::with_capacity(part_size.min(1 << 20));
    let mut upload: Option<Multipart> = None;
    let mut bytes = 0u64;
    let result: Result<(), String> = async {
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| format!("reading the source: {e}"))?;
            bytes += piece.as_ref().len() as u64;
            buffer.extend_from_slice(piece.as_ref());
            while buffer.len() >= part_size {
                let rest = buffer.split_off(part_size);
                let part = std::mem::replace(&mut buffer, rest);
                let multipart = match &mut upload {
                    Some(multipart) => multipart,
                    None => upload.insert(Multipart::start(s3, to).await?),
                };
                multipart.send_part(s3, to, part).await?;
            }
        }
        Ok(())
    }
    .await;
    match (result, upload) {
        (Err(message), Some(multipart)) => {
            multipart.abort(s3, to).await;
            Err(message)
        }
        (Err(message), None) => Err(message),
        (Ok(()), None) => {
            let send = || {
                s3.put_object()
                    .bucket(to.bucket)
                    .key(to.key)
                    .content_type(to.content_type)
                    .set_tagging((!to.tags.is_empty()).then(|| encode_tagging(to.tags)))
                    .set_storage_class(to.storage_class.map(StorageClass::from))
                    .body(ByteStream::from(buffer.clone()))
                    .customize()
                    .config_override(no_retries())
                    .send()
            };
            let target = Attempt { s3, bucket: to.bucket, key: to.key, size: bytes, etag: None };
            let written =
                write_once(&target, "PutObject", send).await.map_err(|e| format!("PutObject: {}", error_text(&e)))?;
            Ok(Uploaded { bytes, etag: written.etag, version_id: written.version_id })
        }
        (Ok(()), Some(mut multipart)) => {
            if !buffer.is_empty()
                && let Err(message) = multipart.send_part(s3, to, buffer).await
            {
                multipart.abort(s3, to).await;
                return Err(message);
            }
            match multipart.complete(s3, to, bytes).await {
                Ok((etag, version_id)) => Ok(Uploaded { bytes, etag, version_id }),
                Err(message) => {
                    multipart.abort(s3, to).await;
                    Err(message)
                }
            }
        }
    }
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl Multipart {
    async fn start(s3: &aws_sdk_s3::Client, to: &Destination<'_>) -> Result<Multipart, String> {
        let output = s3
            .create_multipart_upload()
            .bucket(to.bucket)
            .key(to.key)
            .content_type(to.content_type)
            .set_tagging((!to.tags.is_empty()).then(|| encode_tagging(to.tags)))
            .set_storage_class(to.storage_class.map(StorageClass::from))
            .send()
            .await
            .map_err(|e| format!("CreateMultipartUpload: {}", error_text(&e)))?;
        let upload_id = output.upload_id().ok_or("CreateMultipartUpload gave no upload id")?.to_string();
        super::uploads::opened(s3, to.bucket, to.key, &upload_id);
        Ok(Multipart { upload_id, parts: Vec::new() })
    }

    async fn send_part(&mut self, s3: &aws_sdk_s3::Client, to: &Destination<'_>, part: Vec<u8>) -> Result<(), String> {
        let number = self.parts.len() as i32 + 1;
        let output = s3
            .upload_part()
            .bucket(to.bucket)
            .key(to.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| format!("UploadPart {number}: {}", error_text(&e)))?;
        self.parts
            .push(CompletedPart::builder().part_number(number).set_e_tag(output.e_tag().map(str::to_string)).build());
        Ok(())
    }

    async fn complete(
        &mut self,
        s3: &aws_sdk_s3::Client,
        to: &Destination<'_>,
        bytes: u64,
    ) -> Result<(Option<String>, Option<String>), String> {
        let done = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build();
        let send = || {
            s3.complete_multipart_upload()
                .bucket(to.bucket)
                .key(to.key)
                .upload_id(&self.upload_id)
                .multipart_upload(done.clone())
                .customize()
                .config_override(no_retries())
                .send()
        };
        let target = Attempt { s3, bucket: to.bucket, key: to.key, size: bytes, etag: None };
        let written = write_once(&target, "CompleteMultipartUpload", send)
            .await
            .map_err(|e| format!("CompleteMultipartUpload: {}", error_text(&e)))?;
        super::uploads::closed(&self.upload_id);
        Ok((written.etag, written.version_id))
    }

    async fn abort(&self, s3: &aws_sdk_s3::Client, to: &Destination<'_>) {
        match s3.abort_multipart_upload().bucket(to.bucket).key(to.key).upload_id(&self.upload_id).send().await {
            Ok(_) => super::uploads::closed(&self.upload_id),
            Err(err) => tracing::warn!(key = to.key, error = %error_text(&err), "could not abort the multipart upload"),
        }
    }
}
