import ArgumentParser
import FaultlineAgent
import FaultlineEngine
import Foundation

/// `faultline report RUN`: a finished agent run's report, as JSON, Markdown, HTML or JUnit.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Fetch a finished run's report from the agent that ran it: JSON, Markdown, HTML or JUnit.",
        discussion: """
            Asks each agent given for the run; the first that has it answers. Exits 0 with the report, 2 when no \
            agent has the run, 3 when an agent did not answer, 1 when the run is not over yet.

            Examples:
              faultline report 3f9a0c21 --agent https://10.0.0.5:7465 --format html -o game-day.html
              faultline report 3f9a0c21 --format junit -o junit.xml
            """
    )

    @Argument(help: "The run id.")
    var id: String

    @Option(help: "json, md, html, junit or review (the prefilled blameless review, review.md).")
    var format: RunReport.Format = .md

    @Option(name: [.short, .customLong("output")], help: "Write it to this file (atomically) instead of standard output.", completion: .file())
    var output: String?

    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        // Elsewhere -o says the output format: here it names a file, and a file named json is surely a mistake.
        if let output, ["json", "text", "md", "html", "junit", "review"].contains(output) {
            throw ValidationError("-o names the file to write the report to; for the report's format use --format \(output == "text" ? "md" : output)")
        }
    }

    func run() async throws {
        let clients = try controller.clients()
        let id = id, format = format
        let answers = await eachAgent(clients) { client throws(AgentFailure) -> Data? in
            do throws(AgentFailure) {
                return try await ReportFetch.report(client, id: id, format: format)
            } catch where error.status == 404 && error.code == "not_found" {
                return nil
            }
        }
        var codes: [Int32] = []
        for (client, answer) in answers {
            switch answer {
            case .success(let data?):
                if let output {
                    try data.write(to: URL(fileURLWithPath: output), options: .atomic)
                } else {
                    FileHandle.standardOutput.write(data)
                }
                return
            case .success(nil): continue
            case .failure(let failure):
                StandardError.write("faultline: \(client.endpoint.name): \(failure.message)\n")
                codes.append(failure.status == 409 ? 1 : failure.exitCode)
            }
        }
        if codes.isEmpty {
            StandardError.write("faultline: no agent has run '\(id)'\n")
            throw ExitStatus.invalid
        }
        throw ExitCode(worstExit(codes))
    }
}

/// Reports of agent runs, fetched and written as `faultline run` writes its own.
enum ReportFetch {
    /// The finished run's report in `format`.
    static func report(_ client: AgentClient, id: String, format: RunReport.Format) async throws(AgentFailure) -> Data {
        try await client.send(.GET, "/v1/runs/\(id)/report", query: [("format", format.rawValue)])
    }

    /// `--report DIR` (report.json, .md and .html; in DIR/AGENT/ when there are several agents) and `--junit FILE`
    /// (one test suite per agent) for finished runs; what could not be fetched, in words.
    static func write(_ runs: [(agent: String, client: AgentClient, id: String)], reportDirectory: String?, junit: String?) async -> [String] {
        var problems: [String] = []
        var suites: [String] = []
        for run in runs {
            if let reportDirectory {
                let directory = runs.count == 1 ? reportDirectory : reportDirectory + "/" + folderName(run.agent)
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    for format in RunReport.Format.files {
                        let data = try await report(run.client, id: run.id, format: format)
                        try data.write(to: URL(fileURLWithPath: directory + "/" + format.fileName), options: .atomic)
                    }
                } catch {
                    problems.append("\(run.agent): the report of run \(run.id) could not be written to \(directory): \(error)")
                }
            }
            if junit != nil {
                do {
                    let xml = String(decoding: try await report(run.client, id: run.id, format: .junit), as: UTF8.self)
                    suites += testSuites(xml, agent: runs.count == 1 ? nil : run.agent)
                } catch {
                    problems.append("\(run.agent): the JUnit report of run \(run.id) could not be fetched: \(error)")
                }
            }
        }
        if let junit {
            do { try merged(suites).write(to: URL(fileURLWithPath: junit), options: .atomic) } catch {
                problems.append("cannot write \(junit): \(error)")
            }
        }
        return problems
    }

    /// An agent's name as a folder name: letters, digits, '.', '-' and '_'; anything else becomes '_'.
    static func folderName(_ agent: String) -> String {
        String(agent.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    }

    /// The `<testsuite>` elements of a JUnit document, named after `agent` when there are several.
    static func testSuites(_ xml: String, agent: String?) -> [String] {
        var suites: [String] = []
        var rest = Substring(xml)
        while let start = rest.range(of: "<testsuite "), let end = rest.range(of: "</testsuite>", range: start.upperBound..<rest.endIndex) {
            var suite = String(rest[start.lowerBound..<end.upperBound])
            if let agent, let name = suite.range(of: "name=\"") {
                suite.insert(contentsOf: escape(agent) + " · ", at: name.upperBound)
            }
            suites.append(suite)
            rest = rest[end.upperBound...]
        }
        return suites
    }

    /// One JUnit document of the suites, with their totals.
    static func merged(_ suites: [String]) -> Data {
        func total(_ attribute: String) -> Int {
            suites.reduce(0) { sum, suite in
                guard let range = suite.range(of: " \(attribute)=\"") else { return sum }
                return sum + (Int(suite[range.upperBound...].prefix { $0 != "\"" }) ?? 0)
            }
        }
        return Data("""
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuites name="faultline" tests="\(total("tests"))" failures="\(total("failures"))" errors="\(total("errors"))">
            \(suites.joined(separator: "\n"))
            </testsuites>

            """.utf8)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension RunReport.Format: ExpressibleByArgument {}
