//! PLACEHOLDER until the real module lands: same API as the archive checker.
#![allow(missing_docs, dead_code, unused_variables)]

use std::path::Path;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_unpacked_bytes: u64,
    pub max_file_bytes: u64,
    pub max_entries: u64,
    pub max_ratio: u64,
    pub max_path_bytes: usize,
    pub max_name_bytes: usize,
    pub max_depth: usize,
}
impl Default for Limits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: 8 << 30,
            max_file_bytes: 2 << 30,
            max_entries: 100_000,
            max_ratio: 200,
            max_path_bytes: 1024,
            max_name_bytes: 255,
            max_depth: 32,
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    TarZst,
    Tar,
    Zip,
}
impl Format {
    pub fn as_str(self) -> &'static str {
        "tar.gz"
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}
#[derive(Debug)]
pub struct Extracted {
    pub format: Format,
    pub files: Vec<ManifestEntry>,
    pub unpacked_bytes: u64,
    pub dirs: u64,
    pub unwrapped: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError {
    pub code: &'static str,
    pub entry: Option<String>,
    pub message: String,
}
impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for ArchiveError {}
pub fn extract(
    archive: &Path,
    archive_bytes: u64,
    dest: &Path,
    limits: &Limits,
) -> Result<Extracted, ArchiveError> {
    todo!()
}
