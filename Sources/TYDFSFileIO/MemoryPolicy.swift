#if canImport(Glibc)
import Glibc
#endif
import TYDFSCore

/// How the process's allocator (glibc's malloc) treats big buffers, freed memory and its heaps.
///
/// The data path allocates and frees 1 MiB I/O buffers (and the mount its upload buffers) all
/// the time. glibc soon serves them from its heaps, which keep what is freed, so a busy server's
/// resident memory grew past what it held at any moment. Mapped one by one, each buffer goes
/// back to the system when freed (but for the few `RecycledIOBuffers` keeps). Measured with 32
/// transfers at once (16 gets, 16 puts): datakeepers peaked at 218–290 MiB RSS with glibc's
/// default and at 133–239 MiB with buffers of 1 MiB and more mapped. A fresh map's page faults
/// cost 0.15 CPU-seconds per GiB a datakeeper serves, which `RecycledIOBuffers` gives back for
/// its chunk reads; other big buffers (the mount's uploads) still pay them.
public enum MemoryPolicy {
    /// Has glibc map every allocation of at least `bytes` on its own and unmap it when freed
    /// (`mallopt(M_MMAP_THRESHOLD)`). Looked up by name, as `sync_file_range` is, since Swift's
    /// Glibc module does not declare it; where it is missing, nothing changes.
    public static func mapAllocations(ofAtLeast bytes: Int) {
        setOption(mmapThresholdOption, to: bytes)
    }

    /// A server's settings (master and datakeeper): two heaps, each keeping at most
    /// `Limits.keptFreedHeapBytes` it freed, and allocations of an I/O buffer and more mapped on
    /// their own. Keeping freed memory stops glibc raising its map threshold, so it is fixed
    /// here; left at 128 KiB, every buffer from there up would be mapped and faulted in afresh.
    public static func configureForServer() {
        mapAllocations(ofAtLeast: Limits.ioBufferBytes)
        keepFreedMemory(upTo: Limits.keptFreedHeapBytes)
        limitHeaps(to: Limits.allocatorHeaps)
    }

    /// Has glibc keep up to `bytes` of freed memory at the top of a heap instead of giving it
    /// back at once (`mallopt(M_TRIM_THRESHOLD)`; 128 KiB once the map threshold is set). A
    /// datakeeper receiving a put frees and allocates its 64–256 KiB read buffers all the time:
    /// each time a heap shrank and grew back, the new pages were faulted in again, and on this
    /// machine a page the guest has not touched lately is dear (see `RecycledIOBuffers`).
    public static func keepFreedMemory(upTo bytes: Int) {
        setOption(trimThresholdOption, to: bytes)
    }

    /// Has glibc make no more heaps once it has `count` (`mallopt(M_ARENA_MAX)`; 8 per core
    /// otherwise; heaps made before the call stay, so call it first). Each heap keeps its own
    /// freed memory, so with many of them what a busy process holds is the sum of each heap's
    /// own peak rather than its peak overall.
    public static func limitHeaps(to count: Int) {
        setOption(arenaMaxOption, to: count)
    }

    private static func setOption(_ option: Int32, to value: Int) {
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        _ = mallopt(option, Int32(value))
    }

    /// `M_TRIM_THRESHOLD`, `M_MMAP_THRESHOLD` and `M_ARENA_MAX` in glibc's malloc.h.
    private static let trimThresholdOption: Int32 = -1
    private static let mmapThresholdOption: Int32 = -3
    private static let arenaMaxOption: Int32 = -8
}
