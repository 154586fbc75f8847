import TernLog

/// The broker's periodic work, each on a thread of its own (`PeriodicThread`): blocking disk work
/// stays off the event loops, and a long compaction pass never delays an interval flush.
extension Broker {
    /// Starts the background threads; `shutdown()` stops them. Called once, by `tern broker`.
    public func startMaintenance() {
        let topics = self.topics
        var threads: [PeriodicThread] = []
        // Checked often enough that a log is flushed within about a tick of falling due. It runs
        // even without a broker-wide flush.ms: a topic's own flush.ms, or a dynamic
        // log.flush.interval.ms set later, needs it too.
        let flushInterval = config.log.flushIntervalMs
        threads.append(PeriodicThread(name: "tern-log-flusher", intervalMs: max(10, min(flushInterval, 1000))) {
            topics.flushDueLogs()
        })
        threads.append(PeriodicThread(name: "tern-log-cleaner", intervalMs: config.retentionCheckIntervalMs) {
            topics.enforceRetention()
            topics.compactLogs()
        })
        threads.append(PeriodicThread(name: "tern-broker-housekeeping", intervalMs: 5000) { [self] in
            sampleGauges()
            abortExpiredTransactions()
        })
        threads.append(PeriodicThread(name: "tern-txn-id-expiry", intervalMs: config.transactionCleanupIntervalMs) { [self] in
            removeExpiredTransactionalIds()
        })
        maintenanceThreads.withLockedValue { running in
            precondition(running.isEmpty, "startMaintenance runs once")
            running = threads
        }
    }

    func stopMaintenance() {
        for thread in maintenanceThreads.withLockedValue({ running in defer { running = [] }; return running }) { thread.stop() }
    }
}
