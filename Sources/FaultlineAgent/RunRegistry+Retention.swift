import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import Foundation

/// A finished run as the agent keeps it in memory: what listing, filtering and retention need. Its status, events
/// and reports stay in its folder, read when asked for.
struct FinishedRun: Sendable, Hashable {
    /// `createdAt` as the API writes it: the listing's order and its cursor.
    var created: String
    var scenario: String
    var state: RunState
    var endedAt: Date

    init(_ status: RunStatus) {
        created = APIDate.format(status.createdAt)
        scenario = status.scenario
        state = status.state
        endedAt = status.endedAt ?? status.createdAt
    }
}

/// What `GET /v1/runs` asks for: a page of runs, newest first, after a cursor, of some states and one scenario.
public struct RunQuery: Sendable, Hashable {
    public static let defaultLimit = 100
    public static let maximumLimit = 1_000

    public var limit = RunQuery.defaultLimit
    /// The `next` of the page before: only runs older than the one it names.
    public var after: Cursor?
    /// Only runs in one of these states; nil: all.
    public var states: Set<RunState>?
    public var scenario: String?

    public init(limit: Int = RunQuery.defaultLimit, after: Cursor? = nil, states: Set<RunState>? = nil, scenario: String? = nil) {
        self.limit = limit
        self.after = after
        self.states = states
        self.scenario = scenario
    }

    /// A run's place in the listing: its creation time as the API writes it, then its id.
    public struct Cursor: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var created: String
        public var id: String

        /// `2026-12-03T09:00:00.000Z_ab12cd34`, as `next` gives it.
        public init?(_ text: String) {
            guard let split = text.lastIndex(of: "_") else { return nil }
            created = String(text[..<split])
            id = String(text[text.index(after: split)...])
            // Its shape only (YYYY-MM-DDTHH:MM:SS.mmmZ): it is compared as text, as the listing orders runs.
            let shape = Array("0000-00-00T00:00:00.000Z".utf8)
            let bytes = Array(created.utf8)
            let digit = UInt8(ascii: "0")
            guard RunID.isValid(id), bytes.count == shape.count,
                  zip(bytes, shape).allSatisfy({ $1 == digit ? (digit...UInt8(ascii: "9")).contains($0) : $0 == $1 }) else { return nil }
        }

        init(created: String, id: String) {
            self.created = created
            self.id = id
        }

        public var description: String { created + "_" + id }

        public static func < (a: Cursor, b: Cursor) -> Bool { (a.created, a.id) < (b.created, b.id) }
    }

    /// Parses the query's parameters; a `bad_request` naming the one that is wrong.
    public init(parameters: [String: String]) throws(AgentError) {
        if let text = parameters["limit"] {
            guard let value = Int(text), (1...Self.maximumLimit).contains(value) else {
                throw AgentError.badRequest("limit '\(text)' is not a whole number from 1 to \(Self.maximumLimit)")
            }
            limit = value
        }
        if let text = parameters["after"] {
            guard let cursor = Cursor(text) else {
                throw AgentError.badRequest("after '\(text)' is not a cursor: pass the 'next' of the page before")
            }
            after = cursor
        }
        if let text = parameters["state"] {
            var states: Set<RunState> = []
            for name in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                switch name {
                case "active": states.formUnion(RunState.allCases.filter { !$0.isFinal })
                case "finished": states.formUnion(RunState.results)
                default:
                    guard let state = RunState(rawValue: name) else {
                        throw AgentError.badRequest("state '\(name)' is not one of \(RunState.allCases.map(\.rawValue).joined(separator: ", ")), active, finished")
                    }
                    states.insert(state)
                }
            }
            self.states = states
        }
        if let text = parameters["scenario"] {
            guard !text.isEmpty else { throw AgentError.badRequest("scenario is empty: name the scenario whose runs to list") }
            scenario = text
        }
    }

    func matches(state: RunState, scenario: String) -> Bool {
        (states?.contains(state) ?? true) && (self.scenario.map { $0 == scenario } ?? true)
    }
}

extension RunRegistry {
    // MARK: Finished runs

    /// A run that ended leaves memory: its folder and a small entry stay until retention removes them.
    func retire(_ run: AgentRun) {
        let status = run.status
        guard status.state.isFinal else { return }
        finished.withLock { $0[run.id] = FinishedRun(status) }
        runs.withLock { runs in
            if runs[run.id] === run { runs.removeValue(forKey: run.id) }
        }
        prune()
    }

    /// A run of this agent, live or finished (read from its folder).
    func lookup(_ id: String) -> AgentRun? {
        if let live = runs.withLock({ $0[id] }) { return live }
        guard RunID.isValid(id), finished.withLock({ $0[id] }) != nil else { return nil }
        return AgentRun.load(from: runsDirectory + "/" + id)
    }

    /// A run's status as API JSON: a live run's from memory, a finished run's file as written (nothing decoded).
    func statusJSON(_ id: String) throws(AgentError) -> Data {
        if let live = runs.withLock({ $0[id] }) { return live.statusJSON }
        if RunID.isValid(id), finished.withLock({ $0[id] }) != nil,
           let file = FileManager.default.contents(atPath: runsDirectory + "/" + id + "/status.json") {
            return file
        }
        return try run(id).statusJSON
    }

    /// A new run id, unused by any run this agent keeps.
    func newRunID() -> String {
        while true {
            let id = RunID.random()
            let taken = runs.withLock { $0[id] != nil } || finished.withLock { $0[id] != nil }
                || FileManager.default.fileExists(atPath: runsDirectory + "/" + id)
            if !taken { return id }
        }
    }

    /// Removes the finished runs beyond the retention, oldest first: their folders (status, events, reports, the
    /// guard's log), journal rows and one-shot schedules. A run of which a fault may still be on the host is kept
    /// until `faultline recover` reverts it or `recover --forget` acknowledges it. The runs removed.
    @discardableResult
    func prune(now: Date = Date()) -> [String] {
        let protected: Set<String>
        do { protected = try journal.keptForRecovery() } catch {
            log(.error, .journal, "cannot read the journal, so no run is pruned: \(error)")
            return []
        }
        let retention = configuration.retention
        let victims = finished.withLock { index -> [String] in
            let ids = retention.victims(index.map { Retention.Finished(id: $0.key, endedAt: $0.value.endedAt) }, now: now, protected: protected)
            for id in ids { index.removeValue(forKey: id) }
            return ids
        }
        guard !victims.isEmpty else { return [] }
        for id in victims {
            do { try FileManager.default.removeItem(atPath: runsDirectory + "/" + id) } catch {
                if FileManager.default.fileExists(atPath: runsDirectory + "/" + id) {
                    log(.warning, .journal, "cannot remove the folder of pruned run \(id): \(error)", run: id)
                }
            }
        }
        schedules.withLock { schedules in
            for id in victims where schedules[id].map({ $0.kind == .at && $0.state != .active }) ?? false { schedules.removeValue(forKey: id) }
        }
        do {
            try journal.delete(runs: victims)
            // Runs of `faultline run` on the same state directory are bounded the same way (rows and folders).
            try RunSession.prune(journal, retention: retention, now: now)
        } catch {
            log(.error, .journal, "cannot remove pruned runs from the journal: \(error)")
        }
        let count = prunedSinceCompact.withLock { count in
            count += victims.count
            defer { if count >= Self.compactEvery { count = 0 } }
            return count
        }
        if count >= Self.compactEvery {
            do { try journal.compact() } catch { log(.warning, .journal, "\(error)") }
        }
        return victims
    }

    /// Sets `faultline_state_bytes` from a walk of the state directory, at most every 10 s (a scrape costs one
    /// walk of at most the retained run folders).
    func measureState(now: ContinuousClock.Instant = .now) {
        let due = stateMeasured.withLock { last in
            guard last.map({ now - $0 >= .seconds(10) }) ?? true else { return false }
            last = now
            return true
        }
        if due { metrics.stateUsage(StateUsage.measure(configuration.stateDirectory).bytes) }
    }

    /// How many pruned runs between two compactions of the journal.
    static var compactEvery: Int { 100 }

    // MARK: Listing

    /// `{"runs": [...], "next": CURSOR}`: a page of runs newest first, from memory (live runs) and their folders
    /// (finished ones); `next` names the last one when more may follow.
    func listJSON(_ query: RunQuery = RunQuery()) -> Data {
        typealias Entry = (cursor: RunQuery.Cursor, live: AgentRun?)
        var entries: [Entry] = []
        let live = runs.withLock { Array($0.values) }
        let liveIDs = Set(live.map(\.id))
        for run in live {
            let status = run.status
            guard query.matches(state: status.state, scenario: status.scenario) else { continue }
            entries.append((RunQuery.Cursor(created: APIDate.format(status.createdAt), id: run.id), run))
        }
        finished.withLock { index in
            for (id, run) in index where !liveIDs.contains(id) && query.matches(state: run.state, scenario: run.scenario) {
                entries.append((RunQuery.Cursor(created: run.created, id: id), nil))
            }
        }
        if let after = query.after { entries.removeAll { $0.cursor >= after } }
        entries.sort { $0.cursor > $1.cursor }
        var data = Data("{\"runs\":[".utf8)
        var written = 0
        var last: RunQuery.Cursor?
        for entry in entries {
            guard written < query.limit else { break }
            let json: Data
            if let live = entry.live {
                json = live.statusJSON
            } else if let file = FileManager.default.contents(atPath: runsDirectory + "/" + entry.cursor.id + "/status.json") {
                json = file
            } else {
                continue  // pruned meanwhile
            }
            if written > 0 { data.append(0x2C) }
            data.append(json)
            written += 1
            last = entry.cursor
        }
        data.append(0x5D)
        if written == query.limit, let last, entries.last?.cursor != last {
            data.append(contentsOf: Array(",\"next\":\"\(last)\"".utf8))
        }
        data.append(0x7D)
        return data
    }
}
