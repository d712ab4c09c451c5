#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
@_spi(CustomByteBufferAllocator) import NIOCore
import TYDFSCore

/// A `ByteBufferAllocator` that recycles I/O buffers (`Limits.ioBufferBytes`) instead of
/// returning them to the system.
///
/// A datakeeper serving a chunk reads it in I/O buffers, one after another, and frees each once
/// it is sent. With `MemoryPolicy` each one was a fresh map, and touching its pages cost 0.15
/// CPU-seconds per GiB served. Freed buffers are kept here for the next read instead (at most
/// `keptBuffers` of them, which bounds what the recycling adds to the process's memory). Only
/// storage of exactly `Limits.ioBufferBytes` is recycled: NIO rounds a capacity up to a power of
/// two, so reads of more than half an I/O buffer qualify; everything else goes to `malloc`.
public enum RecycledIOBuffers {
    public static let allocator = ByteBufferAllocator(
        allocate: recycledAllocate, reallocate: recycledReallocate, deallocate: recycledDeallocate, copy: recycledCopy)

    /// Free buffers kept for reuse (16 I/O buffers: 16 MiB today).
    static let keptBuffers = 16
}

/// The buffers this allocator made that are alive or kept, and the kept ones (addresses as
/// integers, which may cross threads).
private struct Recycling {
    var made: Set<UInt> = []
    var kept: [UInt] = []
}

private let recycling = NIOLockedValueBox(Recycling())

private func recycledAllocate(_ size: Int) -> UnsafeMutableRawPointer? {
    guard size == Limits.ioBufferBytes else { return malloc(size) }
    if let kept = recycling.withLockedValue({ $0.kept.popLast() }) { return UnsafeMutableRawPointer(bitPattern: kept) }
    guard let buffer = malloc(size) else { return nil }
    recycling.withLockedValue { _ = $0.made.insert(UInt(bitPattern: buffer)) }
    return buffer
}

private func recycledDeallocate(_ pointer: UnsafeMutableRawPointer) {
    let address = UInt(bitPattern: pointer)
    let keep = recycling.withLockedValue { state -> Bool in
        guard state.made.contains(address) else { return false }
        if state.kept.count < RecycledIOBuffers.keptBuffers {
            state.kept.append(address)
            return true
        }
        state.made.remove(address)
        return false
    }
    if !keep { free(pointer) }
}

/// A recycled buffer that grows leaves the recycling: it is `malloc`'s again.
private func recycledReallocate(_ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int) -> UnsafeMutableRawPointer? {
    if let pointer { recycling.withLockedValue { _ = $0.made.remove(UInt(bitPattern: pointer)) } }
    return realloc(pointer, newSize)
}

private func recycledCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) {
    destination.copyMemory(from: source, byteCount: count)
}
