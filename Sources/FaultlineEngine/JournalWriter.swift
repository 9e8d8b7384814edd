import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import Synchronization

/// Writes one fault's revert records to the journal (state `applying`) before each step, and remembers the last.
final class JournalWriter: RevertJournal {
    let journal: Journal
    let runID: String
    let fault: String
    let type: FaultType
    private let last = Mutex<RevertRecord?>(nil)

    init(journal: Journal, runID: String, fault: String, type: FaultType) {
        self.journal = journal
        self.runID = runID
        self.fault = fault
        self.type = type
    }

    var lastRecord: RevertRecord? { last.withLock { $0 } }

    func record(_ record: RevertRecord) async throws(FaultlineError) {
        try journal.record(runID: runID, fault: fault, type: type, state: .applying, record: record)
        last.withLock { $0 = record }
    }
}
