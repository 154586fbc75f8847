import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Every partition segment and client connection costs descriptors; distributions start
/// processes with a soft RLIMIT_NOFILE of 1024, far below what a broker needs and far below the
/// hard limit they allow. Raise the soft limit to the hard one at start, as Kafka's packaging does
/// with `ulimit -n`, and say what we got.
enum FileDescriptorLimit {
    @discardableResult
    static func raiseToHard(logger: Logger) -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            logger.warning("cannot read the file descriptor limit", metadata: ["errno": "\(errno)"])
            return 0
        }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limit = raised
            } else {
                logger.warning("cannot raise the file descriptor limit", metadata: ["errno": "\(errno)", "soft": "\(limit.rlim_cur)"])
            }
        }
        logger.info("file descriptor limit", metadata: ["nofile": "\(limit.rlim_cur)"])
        return UInt64(limit.rlim_cur)
    }
}
