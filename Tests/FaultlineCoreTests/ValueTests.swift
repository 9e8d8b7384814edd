@testable import FaultlineCore
import Testing

@Suite struct ValueTests {
    @Test(arguments: [("250ms", 250_000), ("2s", 2_000_000), ("1m30s", 90_000_000), ("1h", 3_600_000_000), ("1.5s", 1_500_000), ("500us", 500)])
    func durationsParse(_ text: String, _ microseconds: Int64) throws {
        #expect(try TimeSpan(parsing: text).microseconds == microseconds)
    }

    @Test func durationsPrintCanonically() throws {
        #expect(try TimeSpan(parsing: "90s").description == "1m30s")
        #expect(try TimeSpan(parsing: "1500ms").description == "1.5s")
        #expect(try TimeSpan(parsing: "1500us").tcArgument == "1500us")
        #expect(try TimeSpan(parsing: "2s").tcArgument == "2000ms")
    }

    @Test func bareZeroIsZero() throws {
        #expect(try TimeSpan(parsing: "0") == .zero)
    }

    @Test(arguments: ["2", "2x", "", "ms", "-1s"])
    func badDurationsAreRejected(_ text: String) {
        #expect(throws: ValueError.self) { try TimeSpan(parsing: text) }
    }

    @Test func percentagesAcceptBareNumbersAndRejectHexAndRange() throws {
        #expect(try Percent(parsing: "25%").value == 25)
        #expect(try Percent(parsing: "40").description == "40%")
        #expect(try Percent(parsing: "0.5%").description == "0.5%")
        #expect(throws: ValueError.self) { try Percent(parsing: "0.99") }
        #expect(throws: ValueError.self) { try Percent(parsing: "0x1A") }
        #expect(throws: ValueError.self) { try Percent(parsing: "101%") }
    }

    @Test func sizesAndRates() throws {
        #expect(try ByteCount(parsing: "512MiB").bytes == 512 << 20)
        #expect(try ByteCount(parsing: "100MB").bytes == 100_000_000)
        #expect(try ByteCount(parsing: "2GiB").description == "2GiB")
        #expect(try BitRate(parsing: "1mbit").bitsPerSecond == 1_000_000)
        #expect(try BitRate(parsing: "10mbps").bitsPerSecond == 80_000_000)
        #expect(try BitRate(parsing: "1500kbit").description == "1500kbit")
        #expect(throws: ValueError.self) { try BitRate(parsing: "100") }
    }

    @Test func interfaceNamesFollowLinuxRules() throws {
        #expect(try InterfaceName(parsing: "eth0").rawValue == "eth0")
        #expect(try InterfaceName(parsing: "veth-flt-abcdef").rawValue.count == 15)
        for bad in ["", "a-very-long-interface", "eth0/1", "eth 0", "eth0:1", ".", "..", "rt+", "eth+0", "+"] {
            #expect(throws: ValueError.self) { try InterfaceName(parsing: bad) }
        }
    }

    @Test func signalsByNameAndNumber() throws {
        #expect(try Signal(parsing: "SIGTERM").number == 15)
        #expect(try Signal(parsing: "kill").number == 9)
        #expect(try Signal(parsing: "19").name == "SIGSTOP")
        #expect(throws: ValueError.self) { try Signal(parsing: "SIGFOO") }
        #expect(throws: ValueError.self) { try Signal(parsing: "64") }
    }

    @Test func portRangesCoverExactlyWithMasks() throws {
        let range = try PortRange(parsing: "8000-8100")
        var covered: [UInt16] = []
        for block in range.maskedBlocks {
            let size = Int(~block.mask) + 1
            covered += (0..<size).map { block.value + UInt16($0) }
        }
        #expect(covered == Array(8000...8100))
        #expect(try PortRange(parsing: "5432").maskedBlocks.map(\.mask) == [0xffff])
        #expect(try PortRange(parsing: "1-65535").maskedBlocks.count == 16)
        #expect(range.iptablesArgument == "8000:8100")
    }

    @Test func hostsAreIPsCIDRsOrNames() throws {
        #expect(try HostSpec(parsing: "10.0.0.5") == .network(IPNetwork("10.0.0.5/32")!))
        #expect(try HostSpec(parsing: "fd00:0::1/64").description == "fd00::1/64")
        #expect(try HostSpec(parsing: "DB.Internal") == .name("db.internal"))
        for bad in ["10.0.0.500", "10.0.0.0/33", "fd00::/129", "bad_name", "-x.example", ""] {
            #expect(throws: ValueError.self) { try HostSpec(parsing: bad) }
        }
    }

    @Test func netnsTargets() throws {
        #expect(try NetnsTarget(netns: "app") == .named("app"))
        #expect(try NetnsTarget(netns: "pid:42") == .pid(42))
        #expect(try NetnsTarget(netns: "/proc/1/ns/net").namespacePath == "/proc/1/ns/net")
        for bad in ["/", "../x", "pid:0", "a b", "/run/../etc"] {
            #expect(throws: ValueError.self) { try NetnsTarget(netns: bad) }
        }
    }

    @Test func spellingSuggestions() {
        #expect(Spelling.suggest("dealy", among: ["delay", "jitter"]) == "delay")
        #expect(Spelling.suggest("latncy", among: FaultType.allCases.map(\.rawValue)) == "latency")
        #expect(Spelling.suggest("zzz", among: ["delay"]) == nil)
    }
}
