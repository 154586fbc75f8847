import Benchmark
import Foundation
import Logging
import NIOCore
import TernLog
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

// Log append and fetch throughput on this machine's disk. `make bench` runs `dd` on the same
// directory first so the figures can be read as ratios of the disk's own bandwidth.
//
// Each iteration appends (or sends) one batch; the batch size is in the benchmark's name, so
// MB/s = throughput (batches/s) × batch size.

let dataDir = ProcessInfo.processInfo.environment["TERN_BENCH_DIR"] ?? FileManager.default.currentDirectoryPath + "/.bench-data"
let logger = Logger(label: "bench")

/// A stored-format batch of ~`bytes` bytes made of 100-byte records.
func makeBatch(bytes: Int) -> (ByteBuffer, [RecordBatchHeader]) {
    let count = max(1, bytes / 120)
    let value = ByteBuffer(repeating: 0x61, count: 100)
    var out = ByteBuffer()
    try! RecordBatch(records: (0..<count).map { _ in Record(timestamp: 1_700_000_000_000, key: nil, value: value) }).encode(to: &out)
    return (out, try! RecordBatchHeader.validateAll(out))
}

func freshLog(_ name: String, sync: Bool) -> PartitionLog {
    let dir = "\(dataDir)/\(name)-0"
    try? FileManager.default.removeItem(atPath: dir)
    var config = LogConfig()
    if sync { config.flushIntervalMessages = 1 }
    return try! PartitionLog(directory: dir, config: config, io: DiskIO(logger: logger), logger: logger)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock], maxDuration: .seconds(5), maxIterations: 1_000_000)

    for (label, size) in [("1 KiB", 1024), ("1 MiB", 1 << 20)] {
        for sync in [false, true] {
            let name = "append \(label) batch\(sync ? " + fdatasync" : "")"
            Benchmark(name) { benchmark in
                let log = freshLog("append-\(size)-\(sync)", sync: sync)
                let (batch, headers) = makeBatch(bytes: size)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(try! log.append(batch, headers: headers))
                }
                benchmark.stopMeasurement()
                log.delete()
            }
        }
    }

    // Fetch from the page cache: find the batch, then sendfile its bytes into a socket that a
    // reader thread drains — the broker's zero-copy path without the network stack's other costs.
    Benchmark("fetch 1 MiB via sendfile") { benchmark in
        let log = freshLog("fetch", sync: false)
        let (batch, headers) = makeBatch(bytes: 1 << 20)
        for _ in 0..<256 { _ = try! log.append(batch, headers: headers) }  // ~256 MiB, in page cache
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let readEnd = fds[1]
        let reader = Thread {
            var sink = [UInt8](repeating: 0, count: 1 << 20)
            while sink.withUnsafeMutableBytes({ read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
        }
        reader.start()
        let end = log.logEndOffset
        var offset: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            if offset >= end { offset = 0 }
            let result = try! log.read(from: offset, maxBytes: 1 << 20)
            guard case .file(let slice) = result.records else { fatalError("expected a file slice") }
            var position = off_t(slice.offset)
            var left = slice.length
            while left > 0 {
                let n = sendfile(fds[0], slice.descriptor, &position, left)
                precondition(n > 0, "sendfile failed: \(errno)")
                left -= n
            }
            offset += Int64(headers[0].lastOffsetDelta) + 1
        }
        benchmark.stopMeasurement()
        close(fds[0])
        log.delete()
    }
}
