import FaultlineCore
import FaultlineFaults
import FaultlineTestSupport

extension MemoryJournal: RevertJournal {
    public func record(_ record: RevertRecord) async throws(FaultlineError) { append(record) }
}
