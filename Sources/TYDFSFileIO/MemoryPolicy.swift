#if canImport(Glibc)
import Glibc
#endif

/// How the process's allocator treats big buffers.
///
/// The data path allocates and frees 1 MiB I/O buffers (the mount, 8 MiB read windows) all the
/// time. glibc soon serves them from its heaps, which keep what is freed, so a busy server's
/// resident memory grew past what it held at any moment. Mapped one by one, each buffer goes
/// back to the system when freed (but for the few `RecycledIOBuffers` keeps). Measured with 32
/// transfers at once (16 gets, 16 puts): datakeepers peaked at 218–290 MiB RSS with glibc's
/// default and at 133–239 MiB with buffers of 1 MiB and more mapped. A fresh map's page faults
/// cost 0.15 CPU-seconds per GiB a datakeeper serves, which `RecycledIOBuffers` gives back for
/// its chunk reads; the mount's read windows and upload buffers still pay them.
public enum MemoryPolicy {
    /// Has glibc map every allocation of at least `bytes` on its own and unmap it when freed
    /// (`mallopt(M_MMAP_THRESHOLD)`). Looked up by name, as `sync_file_range` is, since Swift's
    /// Glibc module does not declare it; where it is missing, nothing changes.
    public static func mapAllocations(ofAtLeast bytes: Int) {
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        _ = mallopt(mmapThresholdOption, Int32(bytes))
    }

    /// `M_MMAP_THRESHOLD` in glibc's malloc.h.
    private static let mmapThresholdOption: Int32 = -3
}
