//! Files uploaded as evidence (a transition page's submit form): stored per transition, keyed by
//! their SHA-256, which the submission's evidence then names; read back for download.

use opsgate_domain::Actor;
use sea_orm::{ConnectionTrait, Statement};

use crate::hex::sha256_hex;
use crate::{Result, Store, ph};

/// Largest file stored (10 MiB).
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// An uploaded file, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub transition_id: String,
    pub sha256: String,
    /// The file's name as uploaded (without any directory).
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
    pub uploaded_by: String,
}

/// A file to store.
#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub content: &'a [u8],
}

impl Store {
    /// Stores `file` for transition `transition_id` as `by`: its SHA-256, and whether it was new
    /// (the same bytes stored before for that transition are kept as they were).
    pub async fn put_attachment(
        &self,
        transition_id: &str,
        file: &NewAttachment<'_>,
        by: &Actor,
    ) -> Result<(String, bool)> {
        if file.content.len() > MAX_ATTACHMENT_BYTES {
            return Err(opsgate_domain::Error::InvalidArgument {
                field: "evidence",
                message: format!(
                    "'{}' has {} bytes, the limit is {MAX_ATTACHMENT_BYTES}",
                    opsgate_domain::clip(file.name),
                    file.content.len()
                ),
            }
            .into());
        }
        let sha256 = sha256_hex(file.content);
        let backend = self.write_db.get_database_backend();
        let sql = format!(
            "INSERT INTO attachments (transition_id, sha256, name, content_type, size, content, \
             uploaded_by, uploaded_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}) \
             ON CONFLICT (transition_id, sha256) DO NOTHING",
            ph(backend, 1),
            ph(backend, 2),
            ph(backend, 3),
            ph(backend, 4),
            ph(backend, 5),
            ph(backend, 6),
            ph(backend, 7),
            ph(backend, 8)
        );
        let size = i64::try_from(file.content.len()).unwrap_or(i64::MAX);
        let txn = self.begin_write().await?;
        let done = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    transition_id.into(),
                    sha256.clone().into(),
                    file.name.into(),
                    file.content_type.into(),
                    size.into(),
                    file.content.to_vec().into(),
                    by.to_string().into(),
                    self.now().into(),
                ],
            ))
            .await?;
        txn.commit().await?;
        Ok((sha256, done.rows_affected() == 1))
    }

    /// Removes an attachment this request stored when what it was for was refused.
    pub async fn remove_attachment(&self, transition_id: &str, sha256: &str) -> Result<()> {
        let backend = self.write_db.get_database_backend();
        let txn = self.begin_write().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM attachments WHERE transition_id = {} AND sha256 = {}",
                ph(backend, 1),
                ph(backend, 2)
            ),
            [transition_id.into(), sha256.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The file with `sha256` stored for transition `transition_id`, if there is one.
    pub async fn attachment(
        &self,
        transition_id: &str,
        sha256: &str,
    ) -> Result<Option<StoredAttachment>> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT transition_id, sha256, name, content_type, content, uploaded_by FROM \
             attachments WHERE transition_id = {} AND sha256 = {}",
            ph(backend, 1),
            ph(backend, 2)
        );
        let Some(r) = self
            .one_row_fresh(&sql, vec![transition_id.into(), sha256.into()])
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(StoredAttachment {
            transition_id: r.try_get("", "transition_id")?,
            sha256: r.try_get("", "sha256")?,
            name: r.try_get("", "name")?,
            content_type: r.try_get("", "content_type")?,
            content: r.try_get("", "content")?,
            uploaded_by: r.try_get("", "uploaded_by")?,
        }))
    }
}
