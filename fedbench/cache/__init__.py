"""What fedbench caches on disk, and how: the cache folder (:mod:`.folder`), arrays of rows written
in chunks and read memory-mapped (:mod:`.arrays`), entries found by what their bytes depend on
(:mod:`.entries`), frozen per-row work filled block by block (:mod:`.frozen`), checks of free disk
and memory before a build (:mod:`.preflight`) and ``fedbench cache list|clean`` (:mod:`.commands`)."""
