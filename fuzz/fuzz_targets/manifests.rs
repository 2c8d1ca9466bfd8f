//! Any text as a manifest file, through everything that reads one with positions: the
//! object lines (`source_lines`), a `rampart scan` snapshot (places by object) and a
//! `rampart netpol` world (workloads, policies and their lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_detect::scan::snapshot::Snapshot;
use rampart_netpol::world::World;
use rampart_types::source_lines::document_lines;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for document in document_lines(text) {
        // Lines are 1-based and items come in the order of the text.
        assert!(document.items.iter().all(|&line| line >= 1));
        assert!(document.items.windows(2).all(|pair| pair[0] <= pair[1]));
    }
    let mut snapshot = Snapshot::default();
    let _ = snapshot.add_text("fuzz.yaml", text);
    let mut world = World::default();
    let _ = world.add_manifests("fuzz.yaml", text);
});
