//! s3s-fs with object tags and bucket settings kept in memory, and synthetic buckets.
//!
//! s3s-fs lists objects without ETags; S3 lists them with, and Backline's diff and its
//! copy-if-unchanged condition use them, so listings get the ETag s3s-fs stored for each object.
//!
//! A bucket named `synthetic-<N>` (or `synthetic-<N>-in-<F>`, in F folders) exists without
//! being created and lists N made-up objects (see `synthetic`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;

use crate::synthetic::Synthetic;

#[derive(Default, Clone)]
struct BucketSettings {
    versioning: Option<BucketVersioningStatus>,
    lifecycle: Option<LifecycleRules>,
    public_access_block: Option<PublicAccessBlockConfiguration>,
    encryption: Option<ServerSideEncryptionConfiguration>,
}

/// Tags by (bucket, key).
pub type TagStore = Arc<Mutex<HashMap<(String, String), TagSet>>>;

pub struct WithExtras {
    fs: FileSystem,
    root: PathBuf,
    tags: TagStore,
    buckets: Mutex<HashMap<String, BucketSettings>>,
}

impl WithExtras {
    pub fn new(fs: FileSystem, root: PathBuf) -> Self {
        Self { fs, root, tags: TagStore::default(), buckets: Mutex::default() }
    }

    pub fn tags(&self) -> TagStore {
        self.tags.clone()
    }

    fn settings(&self, bucket: &str) -> BucketSettings {
        self.buckets.lock().unwrap().get(bucket).cloned().unwrap_or_default()
    }

    fn update(&self, bucket: &str, change: impl FnOnce(&mut BucketSettings)) {
        change(self.buckets.lock().unwrap().entry(bucket.to_string()).or_default());
    }
}

fn ok<T>(output: T) -> S3Result<S3Response<T>> {
    Ok(S3Response::new(output))
}

fn not_found(code: &str) -> S3Error {
    let mut error = S3Error::new(S3ErrorCode::Custom(code.to_string().into()));
    error.set_status_code(http::StatusCode::NOT_FOUND);
    error
}

/// The trait impl: s3s-fs's own operations passed through, the extras answered here.
macro_rules! s3_impl {
    (
        delegate { $($op:ident($input:ident) -> $output:ident;)* }
        extras { $($extra:ident($extra_input:ident) -> $extra_output:ident => $handler:ident;)* }
        wrapped { $($wrapped:ident($wrapped_input:ident) -> $wrapped_output:ident => $wrapper:ident;)* }
    ) => {
        #[async_trait::async_trait]
        impl S3 for WithExtras {
            $(async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                self.fs.$op(req).await
            })*
            $(async fn $extra(&self, req: S3Request<$extra_input>) -> S3Result<S3Response<$extra_output>> {
                self.$handler(req.input)
            })*
            $(async fn $wrapped(&self, req: S3Request<$wrapped_input>) -> S3Result<S3Response<$wrapped_output>> {
                self.$wrapper(req).await
            })*
        }
    };
}

s3_impl! {
    delegate {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        copy_object(CopyObjectInput) -> CopyObjectOutput;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput;
        delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        get_object(GetObjectInput) -> GetObjectOutput;
        head_object(HeadObjectInput) -> HeadObjectOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        put_object(PutObjectInput) -> PutObjectOutput;
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
        upload_part(UploadPartInput) -> UploadPartOutput;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
        list_parts(ListPartsInput) -> ListPartsOutput;
        complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    }
    extras {
        put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput => tag_object;
        get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput => object_tags;
        put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput => set_versioning;
        get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput => versioning;
        put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput)
            -> PutBucketLifecycleConfigurationOutput => set_lifecycle;
        get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput)
            -> GetBucketLifecycleConfigurationOutput => lifecycle;
        put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput => set_public_access_block;
        get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput => public_access_block;
        put_bucket_encryption(PutBucketEncryptionInput) -> PutBucketEncryptionOutput => set_encryption;
        get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput => encryption;
    }
    wrapped {
        head_bucket(HeadBucketInput) -> HeadBucketOutput => head_bucket_or_synthetic;
        list_objects(ListObjectsInput) -> ListObjectsOutput => list_v1;
        list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output => list_or_synthesize;
    }
}

impl WithExtras {
    async fn head_bucket_or_synthetic(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        match Synthetic::of(&req.input.bucket) {
            Some(_) => ok(HeadBucketOutput::default()),
            None => self.fs.head_bucket(req).await,
        }
    }

    /// ListObjects (v1) answered as v2, as s3s-fs does, but through the ETag and delimiter fixes.
    async fn list_v1(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let response = self.list_or_synthesize(req.map_input(Into::into)).await?;
        Ok(response.map_output(|v2| ListObjectsOutput {
            contents: v2.contents,
            common_prefixes: v2.common_prefixes,
            delimiter: v2.delimiter,
            encoding_type: v2.encoding_type,
            name: v2.name,
            prefix: v2.prefix,
            max_keys: v2.max_keys,
            is_truncated: v2.is_truncated,
            next_marker: v2.next_continuation_token,
            ..Default::default()
        }))
    }

    async fn list_or_synthesize(
        &self,
        mut req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        // S3 reads `delimiter=` (rclone sends it) as no delimiter; s3s-fs splits on "".
        if req.input.delimiter.as_deref() == Some("") {
            req.input.delimiter = None;
        }
        let Some(synthetic) = Synthetic::of(&req.input.bucket) else {
            let bucket = req.input.bucket.clone();
            let mut response = self.fs.list_objects_v2(req).await?;
            for object in response.output.contents.iter_mut().flatten() {
                object.e_tag = object.key.as_deref().and_then(|key| self.stored_etag(&bucket, key)).map(ETag::Strong);
            }
            return Ok(response);
        };
        ok(synthetic.list(req.input))
    }

    /// The ETag s3s-fs keeps beside an object (see its `get_internal_info_path`).
    fn stored_etag(&self, bucket: &str, key: &str) -> Option<String> {
        let name =
            format!(".bucket-{}.object-{}.internal.json", URL_SAFE_NO_PAD.encode(bucket), URL_SAFE_NO_PAD.encode(key));
        let info: serde_json::Value = serde_json::from_slice(&std::fs::read(self.root.join(name)).ok()?).ok()?;
        info.get("e_tag")?.as_str().map(str::to_string)
    }

    fn tag_object(&self, input: PutObjectTaggingInput) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.tags.lock().unwrap().insert((input.bucket, input.key), input.tagging.tag_set);
        ok(PutObjectTaggingOutput::default())
    }

    fn object_tags(&self, input: GetObjectTaggingInput) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let tag_set = self.tags.lock().unwrap().get(&(input.bucket, input.key)).cloned().unwrap_or_default();
        ok(GetObjectTaggingOutput { tag_set, version_id: None })
    }

    fn set_versioning(&self, input: PutBucketVersioningInput) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.update(&input.bucket, |s| s.versioning = input.versioning_configuration.status);
        ok(PutBucketVersioningOutput::default())
    }

    fn versioning(&self, input: GetBucketVersioningInput) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        ok(GetBucketVersioningOutput { status: self.settings(&input.bucket).versioning, mfa_delete: None })
    }

    fn set_lifecycle(
        &self,
        input: PutBucketLifecycleConfigurationInput,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        self.update(&input.bucket, |s| s.lifecycle = input.lifecycle_configuration.map(|c| c.rules));
        ok(PutBucketLifecycleConfigurationOutput::default())
    }

    fn lifecycle(
        &self,
        input: GetBucketLifecycleConfigurationInput,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        match self.settings(&input.bucket).lifecycle {
            Some(rules) => ok(GetBucketLifecycleConfigurationOutput { rules: Some(rules), ..Default::default() }),
            None => Err(s3_error!(NoSuchLifecycleConfiguration)),
        }
    }

    fn set_public_access_block(
        &self,
        input: PutPublicAccessBlockInput,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        self.update(&input.bucket, |s| s.public_access_block = Some(input.public_access_block_configuration));
        ok(PutPublicAccessBlockOutput::default())
    }

    fn public_access_block(
        &self,
        input: GetPublicAccessBlockInput,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        match self.settings(&input.bucket).public_access_block {
            Some(block) => ok(GetPublicAccessBlockOutput { public_access_block_configuration: Some(block) }),
            None => Err(not_found("NoSuchPublicAccessBlockConfiguration")),
        }
    }

    fn set_encryption(&self, input: PutBucketEncryptionInput) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        self.update(&input.bucket, |s| s.encryption = Some(input.server_side_encryption_configuration));
        ok(PutBucketEncryptionOutput::default())
    }

    fn encryption(&self, input: GetBucketEncryptionInput) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        match self.settings(&input.bucket).encryption {
            Some(config) => ok(GetBucketEncryptionOutput { server_side_encryption_configuration: Some(config) }),
            None => Err(s3_error!(ServerSideEncryptionConfigurationNotFoundError)),
        }
    }
}
