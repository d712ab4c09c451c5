#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
@_spi(CustomByteBufferAllocator) import NIOCore
import TYDFSCore

/// A `ByteBufferAllocator` that recycles I/O buffers (`Limits.ioBufferBytes`) instead of
/// returning them to the system, and bounds how many of its buffers are alive at once.
///
/// A datakeeper serving a chunk reads it in I/O buffers, one after another, and frees each once
/// it is sent. With `MemoryPolicy` each one was a fresh map, and touching its pages
/// cost a datakeeper 0.15 CPU-seconds per GiB served (clearing and faulting in pages, perf).
/// Freed buffers are kept here for the next read
/// instead (at most `kept` of each size, which bounds what the recycling adds to the process's
/// memory). Only storage of exactly those sizes is recycled; everything else goes to `malloc`.
///
/// Readers that go through `read(_:)` also wait for room: at most `liveBuffers` buffers of this
/// allocator are alive or being read into at once (`BufferAdmission`). A buffer counts until it
/// is freed, which for a piece being served is when NIO has sent it, however late that is:
/// NIO's writer accepts the next piece before its event loop has even queued the previous one,
/// so counting pieces handed to it was not a bound (one datakeeper held 120 buffers).
public enum RecycledIOBuffers {
    public static let allocator = ByteBufferAllocator(
        allocate: recycledAllocate, reallocate: recycledReallocate, deallocate: recycledDeallocate, copy: recycledCopy)

    /// Free buffers kept for reuse, by size: 16 I/O buffers (16 MiB today).
    fileprivate static let kept = [Limits.ioBufferBytes: 16]

    /// Most buffers of this allocator alive at once, as far as readers use `read(_:)` (the
    /// datakeepers' chunk reads).
    public static let liveBuffers = Limits.servingIOBuffers

    /// Runs `read`, which allocates one buffer from `allocator` (or none), once there is room
    /// for it: waits, in turn, while `liveBuffers` are alive or being read into. Throws
    /// `CancellationError` when the task is cancelled while it waits.
    public static func read<T>(_ read: () async throws -> T) async throws -> T {
        try await admission()
        defer { resume(recycling.withLockedValue { $0.admission.readFinished() }) }
        return try await read()
    }

    /// Reads up to `count` bytes of `file` at `offset` into a buffer of this allocator, once
    /// there is room for it (`read(_:)`); with `prefetching`, asks the disk for that range too
    /// (`LocalFile.read`).
    public static func read(count: Int, at offset: Int64, from file: LocalFile, prefetching ahead: Range<Int64>? = nil) async throws -> ByteBuffer {
        try await read { try await file.read(count: count, at: offset, allocator: allocator, prefetching: ahead) }
    }

    /// Buffers of this allocator alive now, and readers waiting for room.
    public static var counts: (live: Int, waiting: Int) {
        recycling.withLockedValue { ($0.admission.live, $0.admission.waiting) }
    }

    private static func admission() async throws {
        let waiterID: Int? = recycling.withLockedValue { state in
            if state.admission.admit() { return nil }
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        guard let waiterID else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                enum Outcome { case cancelled, admitted, waiting }
                let outcome = recycling.withLockedValue { state -> Outcome in
                    if Task.isCancelled { return .cancelled }
                    return state.admission.admitOrEnqueue(waiterID, continuation) ? .admitted : .waiting
                }
                switch outcome {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .admitted: continuation.resume()
                case .waiting: break
                }
            }
        } onCancel: {
            recycling.withLockedValue { $0.admission.withdraw(waiterID) }?.resume(throwing: CancellationError())
        }
    }

    fileprivate static func resume(_ admitted: [CheckedContinuation<Void, Error>]) {
        for waiter in admitted { waiter.resume() }
    }
}

/// The buffers this allocator made: those it may recycle (alive or kept, with their size) and
/// the kept ones by size, the ones alive that count against the bound, and the readers waiting
/// for room (addresses as integers, which may cross threads).
private struct Recycling {
    var made: [UInt: Int] = [:]
    var kept: [Int: [UInt]] = [:]
    var counted: Set<UInt> = []
    var admission = BufferAdmission<CheckedContinuation<Void, Error>>(limit: RecycledIOBuffers.liveBuffers)
    var nextWaiterID = 0
}

private let recycling = NIOLockedValueBox(Recycling())

private func recycledAllocate(_ size: Int) -> UnsafeMutableRawPointer? {
    let recyclable = RecycledIOBuffers.kept[size] != nil
    let recycled: UnsafeMutableRawPointer? = recyclable
        ? recycling.withLockedValue { $0.kept[size]?.popLast() }.flatMap { UnsafeMutableRawPointer(bitPattern: $0) } : nil
    guard let buffer = recycled ?? malloc(size) else { return nil }
    recycling.withLockedValue { state in
        if recycled == nil, recyclable { state.made[UInt(bitPattern: buffer)] = size }
        state.counted.insert(UInt(bitPattern: buffer))
        state.admission.bufferAllocated()
    }
    return buffer
}

private func recycledDeallocate(_ pointer: UnsafeMutableRawPointer) {
    let address = UInt(bitPattern: pointer)
    let (keep, admitted) = recycling.withLockedValue { state -> (Bool, [CheckedContinuation<Void, Error>]) in
        let admitted = state.counted.remove(address) == nil ? [] : state.admission.bufferFreed()
        guard let size = state.made[address] else { return (false, admitted) }
        if state.kept[size, default: []].count < RecycledIOBuffers.kept[size, default: 0] {
            state.kept[size, default: []].append(address)
            return (true, admitted)
        }
        state.made[address] = nil
        return (false, admitted)
    }
    if !keep { free(pointer) }
    RecycledIOBuffers.resume(admitted)
}

/// A recycled buffer that grows leaves the recycling: it is `malloc`'s again, and still counts.
/// Under the lock throughout: once `realloc` has freed the old address, another thread's
/// allocation may get it, and its bookkeeping must not meet this buffer's.
private func recycledReallocate(_ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int) -> UnsafeMutableRawPointer? {
    guard let pointer else { return recycledAllocate(newSize) }
    return recycling.withLockedValue { state in
        let old = UInt(bitPattern: pointer)
        guard let moved = realloc(pointer, newSize) else { return nil }
        state.made[old] = nil
        if state.counted.remove(old) != nil { state.counted.insert(UInt(bitPattern: moved)) }
        return moved
    }
}

private func recycledCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) {
    destination.copyMemory(from: source, byteCount: count)
}
