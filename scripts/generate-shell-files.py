#!/usr/bin/env python3
"""Writes Faultline's shell completions (bash, zsh, fish) and its man page, generated from the commands.

Usage: scripts/generate-shell-files.py BINARY OUTDIR

Under OUTDIR it writes the usual install layout (copy it to /usr/local or /usr):
  share/bash-completion/completions/faultline
  share/zsh/site-functions/_faultline
  share/fish/vendor_completions.d/faultline.fish
  share/man/man1/faultline.1

The completions come from ArgumentParser (`faultline --generate-completion-script SHELL`); the man page is rendered
here from `faultline --experimental-dump-help`, the commands' own description (names, options, abstracts,
discussions, defaults), so it cannot drift from `--help`. SOURCE_DATE_EPOCH sets the page's date (reproducible).
"""
import datetime
import json
import os
import subprocess
import sys

EXIT_CODES = [
    ("0", "ran to the end, the steady state held, everything reverted"),
    ("1", "the steady state deviated or an abort condition fired; everything reverted"),
    ("2", "invalid scenario or usage; nothing applied"),
    ("3", "preflight failed (missing capability, tool or kernel feature; unreachable agent); nothing applied"),
    ("4", "a revert failed: state is left behind and the journal keeps it; run faultline recover"),
    ("130", "interrupted by the user; everything reverted"),
]

ENVIRONMENT = [
    ("FAULTLINE_STATE_DIR", "where the journal lives (default /var/lib/faultline as root, else $XDG_STATE_HOME/faultline)."),
    ("FAULTLINE_RUNTIME_SOCKET", "the container runtime's socket that container and pod targets are found through (run, plan, doctor, agent; --runtime-socket)."),
    ("FAULTLINE_TOKEN", "the agent's API token (agent and controller commands), instead of --token-file."),
    ("FAULTLINE_AGENT", "the agent URL(s) the controller commands talk to, instead of --agent."),
    ("XDG_STATE_HOME", "the base of the default state directory when not root."),
]


def escape(text):
    """Escapes text for a roff line: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def paragraphs(text):
    """Renders a discussion: indented lines (examples) as no-fill blocks, the rest as filled paragraphs."""
    out, block = [], None
    for line in text.rstrip().split("\n"):
        indented = line.startswith("  ")
        if indented and block is None:
            out += [".PP", ".RS 4", ".nf"]
            block = True
        elif not indented and block:
            out += [".fi", ".RE"]
            block = None
        if not line.strip():
            if block is None:
                out.append(".PP")
            continue
        out.append(escape(line[2:] if indented else line))
    if block:
        out += [".fi", ".RE"]
    return out


def flag_name(argument):
    names = argument.get("names", [])
    rendered = [("-" if n["kind"] == "short" else "--") + n["name"] for n in names]
    return ", ".join(rendered)


def synopsis(path, arguments):
    parts = []
    for argument in arguments:
        if not argument.get("shouldDisplay", True) or argument.get("valueName") in ("help", "version"):
            continue
        if argument["kind"] == "positional":
            text = "\\fI" + escape(argument["valueName"]) + "\\fR" + ("..." if argument.get("isRepeating") else "")
        else:
            preferred = argument["preferredName"]
            text = "\\fB" + escape(("-" if preferred["kind"] == "short" else "--") + preferred["name"]) + "\\fR"
            if argument["kind"] == "option":
                text += " \\fI" + escape(argument["valueName"]) + "\\fR"
        parts.append("[" + text + "]" if argument.get("isOptional") else text)
    return [".B " + escape(path), " ".join(parts)] if parts else [".B " + escape(path)]


def options(arguments, common=True):
    out = []
    for argument in arguments:
        if not argument.get("shouldDisplay", True) or (not common and argument.get("valueName") in ("help", "version")):
            continue
        if argument["kind"] == "positional":
            head = "\\fI" + escape(argument["valueName"]) + "\\fR"
        else:
            head = "\\fB" + escape(flag_name(argument)) + "\\fR"
            if argument["kind"] == "option":
                head += " \\fI" + escape(argument["valueName"]) + "\\fR"
        text = argument.get("abstract", "")
        if argument.get("allValues") and "values:" not in text:
            text += " (values: " + ", ".join(argument["allValues"]) + ")"
        if "defaultValue" in argument and "default" not in text:
            text += " (default: " + str(argument["defaultValue"]) + ")"
        out += [".TP", head, escape(text.strip())]
    return out


def man_page(tool, version, date):
    root = tool["command"]
    lines = [
        '.TH FAULTLINE 1 "%s" "faultline %s" "Faultline Manual"' % (date, version),
        ".SH NAME",
        "faultline \\- " + escape(root["abstract"]),
        ".SH SYNOPSIS",
        ".B faultline",
        "\\fIcommand\\fR [\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        escape(root["abstract"]),
    ]
    lines += paragraphs(root.get("discussion", ""))
    lines += [".SH OPTIONS"] + options(root.get("arguments", []))
    lines.append(".SH COMMANDS")
    for command in root.get("subcommands", []):
        if not command.get("shouldDisplay", True) or command["commandName"] == "help":
            continue
        lines += [".SS " + escape("faultline " + command["commandName"])]
        lines += synopsis("faultline " + command["commandName"], command.get("arguments", []))
        lines += [".PP", escape(command.get("abstract", ""))]
        lines += paragraphs(command.get("discussion", ""))
        listed = options(command.get("arguments", []), common=False)
        if listed:
            lines += [".PP", "Options:", ".RS 4"] + listed + [".RE"]
    lines.append('.SH "EXIT STATUS"')
    for code, meaning in EXIT_CODES:
        lines += [".TP", "\\fB" + code + "\\fR", escape(meaning)]
    lines.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        lines += [".TP", "\\fB" + name + "\\fR", escape(meaning)]
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI/var/lib/faultline/journal.sqlite\\fR",
        escape("the write-ahead journal (SQLite, WAL): every fault and the commands that undo it, written before the fault is applied."),
        ".TP",
        "\\fI/var/lib/faultline/runs/\\fR",
        escape("the agent's runs: status, events and reports of each."),
        '.SH "SEE ALSO"',
        ".BR tc (8),",
        ".BR iptables (8),",
        ".BR nsenter (1),",
        ".BR capabilities (7)",
        ".PP",
        escape("The scenario format: docs/scenario-format.md; the agent: docs/agent.md (in the source tree)."),
    ]
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: generate-shell-files.py BINARY OUTDIR")
    binary, out = sys.argv[1], sys.argv[2]
    targets = {
        "bash": "share/bash-completion/completions/faultline",
        "zsh": "share/zsh/site-functions/_faultline",
        "fish": "share/fish/vendor_completions.d/faultline.fish",
    }
    for shell, relative in targets.items():
        script = subprocess.run([binary, "--generate-completion-script", shell], check=True, capture_output=True, text=True).stdout
        path = os.path.join(out, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(script)
    tool = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout)
    version = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else datetime.datetime.now(datetime.timezone.utc)
    path = os.path.join(out, "share/man/man1/faultline.1")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(man_page(tool, version, moment.strftime("%Y-%m-%d")))
    for relative in list(targets.values()) + ["share/man/man1/faultline.1"]:
        print(os.path.join(out, relative))


if __name__ == "__main__":
    main()
