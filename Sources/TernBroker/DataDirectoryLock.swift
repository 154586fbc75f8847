import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on the data directory (`<log.dirs>/.lock`, flock), held for the life of the
/// broker as Kafka holds its `.lock`: a second broker process on the same directory would corrupt
/// the logs both think they own, so it refuses to start instead. The kernel releases the lock when
/// the process dies, however it dies.
final class DataDirectoryLock: Sendable {
    private let fd: NIOLockedValueBox<Int32>

    struct Held: Error, CustomStringConvertible {
        let directory: String
        var description: String { "\(directory) is in use by another broker process (its .lock is held); refusing to start" }
    }

    init(directory: String) throws {
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LockError.open(path, errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let err = errno
            close(fd)
            if err == EWOULDBLOCK { throw Held(directory: directory) }
            throw LockError.open(path, err)
        }
        self.fd = NIOLockedValueBox(fd)
    }

    /// Lets another process (or a reopened broker in the same process) have the directory.
    func release() {
        fd.withLockedValue { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    enum LockError: Error, CustomStringConvertible {
        case open(String, Int32)
        var description: String {
            switch self {
            case .open(let path, let err): return "cannot lock \(path): \(String(cString: strerror(err)))"
            }
        }
    }

    deinit { release() }
}
