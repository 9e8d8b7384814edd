/// iptables and ip6tables commands of one fault run as one `iptables-restore --noflush` (or `ip6tables-restore`) per
/// namespace, tool and table: one process instead of one per rule, and the kernel takes the whole chain at once (a
/// chain never exists half-filled). The plan shows the batch's lines; the revert keeps each command too, so that a
/// batch that fails (a rule already gone makes the whole batch fail) is done again rule by rule.
public enum IptablesBatch {
    /// One iptables command taken apart: where it runs (`nsenter --net=... --` or nothing), the tool, its `-w`, its
    /// table, and the rest, which is a line of the restore format.
    struct Parsed: Equatable {
        var prefix: [String]
        var tool: String
        var wait: String
        var table: String
        var line: [String]

        var key: [String] { prefix + [tool, wait, table] }
    }

    /// The rule commands a restore file takes; anything else (listing, policies) is left as a command.
    static let verbs: Set<String> = ["-N", "-A", "-I", "-D", "-F", "-X"]

    /// What a restore line may hold unquoted: an argument with a space, a quote or a `#` is never batched.
    static func isPlain(_ argument: String) -> Bool {
        !argument.isEmpty && argument.allSatisfy { character in
            character.isASCII && (character.isLetter || character.isNumber || "_.:/,!+=@%-".contains(character))
        }
    }

    static func parse(_ argv: [String]) -> Parsed? {
        var rest = argv[...]
        var prefix: [String] = []
        if rest.first == "nsenter" {
            guard let end = rest.firstIndex(of: "--") else { return nil }
            prefix = Array(rest[...end])
            rest = rest[(end + 1)...]
        }
        guard let tool = rest.first, tool == "iptables" || tool == "ip6tables" else { return nil }
        rest = rest.dropFirst()
        guard rest.first == "-w", rest.count >= 2 else { return nil }
        let wait = rest[rest.index(after: rest.startIndex)]
        rest = rest.dropFirst(2)
        var table = "filter"
        if rest.first == "-t", rest.count >= 2 {
            table = rest[rest.index(after: rest.startIndex)]
            rest = rest.dropFirst(2)
        }
        guard let verb = rest.first, verbs.contains(verb), rest.allSatisfy(isPlain), isPlain(table), isPlain(wait) else { return nil }
        return Parsed(prefix: prefix, tool: tool, wait: wait, table: table, line: Array(rest))
    }

    /// One batch: the restore command, its input, and the commands it stands for (in their order).
    public struct Batch: Sendable, Hashable {
        public var argv: [String]
        public var input: String
        public var commands: [[String]]
    }

    /// `actions` with each run of iptables and ip6tables commands (nothing else between them) gathered into one
    /// batch per namespace, tool and table, in the order each first appears; a lone command stays a command.
    public static func grouped(_ actions: [PlanAction]) -> [PlanAction] {
        var result: [PlanAction] = []
        var run: [[String]] = []
        func flush() {
            result += batches(run).map { batch in batch.commands.count == 1 ? .command(batch.commands[0]) : .batch(batch.argv, input: batch.input) }
            run = []
        }
        for action in actions {
            if case .command(let argv) = action, parse(argv) != nil {
                run.append(argv)
            } else {
                flush()
                result.append(action)
            }
        }
        flush()
        return result
    }

    /// The batches of `commands` (each one parseable), per namespace, tool and table, in first-appearance order.
    public static func batches(_ commands: [[String]]) -> [Batch] {
        var order: [[String]] = []
        var groups: [[String]: (parsed: Parsed, commands: [[String]], lines: [String])] = [:]
        for argv in commands {
            guard let parsed = parse(argv) else { continue }
            if groups[parsed.key] == nil { order.append(parsed.key) }
            var group = groups[parsed.key] ?? (parsed, [], [])
            group.commands.append(argv)
            group.lines.append(parsed.line.joined(separator: " "))
            groups[parsed.key] = group
        }
        return order.compactMap { key in
            guard let group = groups[key] else { return nil }
            let parsed = group.parsed
            return Batch(argv: parsed.prefix + [parsed.tool + "-restore", "-w", parsed.wait, "--noflush"],
                         input: "*\(parsed.table)\n" + group.lines.joined(separator: "\n") + "\nCOMMIT\n",
                         commands: group.commands)
        }
    }

    /// The commands a batch stands for, one per line, as they would run one by one (`iptables -w 5 -t mangle -A ...`).
    public static func expand(_ argv: [String], input: String) -> [[String]] {
        guard let restore = argv.firstIndex(where: { $0 == "iptables-restore" || $0 == "ip6tables-restore" }),
              let wait = argv.firstIndex(of: "-w").map({ argv.index(after: $0) }), wait < argv.endIndex else { return [] }
        let prefix = Array(argv[..<restore]) + [String(argv[restore].dropLast("-restore".count)), "-w", argv[wait]]
        var table = "filter"
        var result: [[String]] = []
        for line in input.split(separator: "\n") {
            if line.hasPrefix("*") { table = String(line.dropFirst()); continue }
            if line == "COMMIT" { continue }
            result.append(prefix + (table == "filter" ? [] : ["-t", table]) + line.split(separator: " ").map(String.init))
        }
        return result
    }

    /// The revert commands of a fault as they run: each run of iptables commands as batches (with the commands they
    /// stand for, to run one by one if the batch fails), anything else as it is.
    public static func revertSteps(_ commands: [[String]]) -> [(batch: Batch?, commands: [[String]])] {
        var steps: [(batch: Batch?, commands: [[String]])] = []
        var run: [[String]] = []
        func flush() {
            for batch in batches(run) {
                steps.append(batch.commands.count == 1 ? (nil, batch.commands) : (batch, batch.commands))
            }
            run = []
        }
        for argv in commands {
            if parse(argv) != nil {
                run.append(argv)
            } else {
                flush()
                steps.append((nil, [argv]))
            }
        }
        flush()
        return steps
    }
}
