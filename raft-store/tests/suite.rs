//! openraft's storage conformance suite against a fresh store in a temp dir per test.

use conclave_raft_store::kv::KvMachine;
use conclave_raft_store::{open_group, LogStore, StateMachineStore, StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

struct TempStoreBuilder;

type Log = LogStore<KvMachine>;
type Sm = StateMachineStore<KvMachine>;

impl StoreBuilder<TypeConfig<KvMachine>, Log, Sm, TempDir> for TempStoreBuilder {
    async fn build(&self) -> Result<(TempDir, Log, Sm), StorageError> {
        let dir = TempDir::new().expect("tempdir");
        let (log, sm) = open_group(dir.path(), 7, None).expect("open group");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(TempStoreBuilder) {
        panic!("storage suite failed: {e}");
    }
}
