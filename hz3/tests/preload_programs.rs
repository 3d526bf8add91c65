//! Real programs under `LD_PRELOAD` of both lanes must print exactly what they print on glibc.
//!
//! Proof that hz3 really served them: each preloaded run also sets `LD_DEBUG=bindings`, and the
//! dynamic linker's log must show `malloc` bound to `libhz3_<lane>.so`, never to libc, in the processes
//! named (for gcc that includes `cc1`, a child process). Debian's `/usr/bin/python3` is used, not pyenv's.

mod common;

use common::{describe, preload_lib, run, TempDir, LANES};
use std::path::Path;
use std::process::{Command, Stdio};

/// A program run: a shell script (so multi-step programs like git run as one preloaded tree), the
/// processes whose `malloc` binding must be checked, and optional files written first.
struct Program {
    name: &'static str,
    script: String,
    files: Vec<(&'static str, String)>,
    bound_in: &'static [&'static str],
}

fn command(program: &Program, dir: &Path) -> Command {
    for (name, text) in &program.files {
        std::fs::write(dir.join(name), text).expect("write program input");
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-ec")
        .arg(&program.script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "hz3 test")
        .env("GIT_AUTHOR_EMAIL", "hz3@example.invalid")
        .env("GIT_COMMITTER_NAME", "hz3 test")
        .env("GIT_COMMITTER_EMAIL", "hz3@example.invalid")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z");
    cmd
}

/// Runs `program` on glibc and under each lane; outputs and exit codes must match.
fn same_output_under_both_lanes(program: Program) {
    let base_dir = TempDir::new(program.name);
    let baseline = run(command(&program, base_dir.path()));
    assert!(
        baseline.status.success(),
        "{} on glibc failed\n{}",
        program.name,
        describe(&baseline)
    );
    assert!(
        !baseline.stdout.is_empty(),
        "{} printed nothing",
        program.name
    );
    for lane in LANES {
        let dir = TempDir::new(program.name);
        let log_dir = TempDir::new("lddebug");
        let mut cmd = command(&program, dir.path());
        cmd.env("LD_PRELOAD", preload_lib(lane))
            .env("LD_DEBUG", "bindings")
            .env("LD_DEBUG_OUTPUT", log_dir.path().join("ld"));
        let out = run(cmd);
        let what = format!("{} under hz3 {lane}", program.name);
        assert_eq!(
            out.status.code(),
            baseline.status.code(),
            "{what}: exit status differs\n{}",
            describe(&out)
        );
        assert!(
            out.stdout == baseline.stdout,
            "{what}: stdout differs from glibc's\n--- glibc ---\n{}\n--- hz3 ---\n{}\n--- hz3 stderr ---\n{}",
            String::from_utf8_lossy(&baseline.stdout),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_malloc_bound_to_hz3(&what, log_dir.path(), lane, program.bound_in);
    }
}

/// Reads the `LD_DEBUG=bindings` logs (one file per process) and checks every `malloc` binding.
fn assert_malloc_bound_to_hz3(what: &str, log_dir: &Path, lane: &str, bound_in: &[&str]) {
    let lib = format!("libhz3_{lane}.so");
    let mut hz3_bound_from = Vec::new();
    for entry in std::fs::read_dir(log_dir).expect("read LD_DEBUG dir") {
        let text =
            std::fs::read_to_string(entry.expect("dir entry").path()).expect("read LD_DEBUG log");
        for line in text
            .lines()
            .filter(|l| l.contains("normal symbol `malloc'"))
        {
            // "<pid>: binding file <from> [0] to <to> [0]: normal symbol `malloc' [GLIBC_2.2.5]"
            let Some((from, to)) = line
                .split_once("binding file ")
                .and_then(|(_, rest)| rest.split_once(" to "))
            else {
                continue;
            };
            assert!(
                !to.contains("libc.so"),
                "{what}: malloc bound to glibc: {line}"
            );
            if to.contains(&lib) {
                hz3_bound_from.push(from.to_string());
            }
        }
    }
    for process in bound_in {
        assert!(
            hz3_bound_from.iter().any(|from| from.contains(process)),
            "{what}: no malloc binding to {lib} from a file named like {process:?}; bindings seen from: {hz3_bound_from:?}"
        );
    }
}

#[test]
fn python3_sorts_objects_with_threads() {
    let script = r#"
import hashlib, random, threading
rng = random.Random(1234)
records = [(rng.random(), "k%d" % i, [i, i * 2]) for i in range(400_000)]
records.sort()
by_key = {r[1]: r for r in records[::3]}
results = [None] * 4
def work(n):
    local = sorted(str(x * (n + 1)) for x in range(120_000))
    chunks = [bytes(s, "ascii") * 3 for s in local[::5]]
    results[n] = hashlib.sha256(b"".join(chunks)).hexdigest()
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
digest = hashlib.sha256(repr(records[:2000]).encode() + repr(sorted(by_key)[:2000]).encode())
print(len(records), len(by_key), digest.hexdigest())
for r in results: print(r)
"#;
    same_output_under_both_lanes(Program {
        name: "python3",
        script: "/usr/bin/python3 -I prog.py".into(),
        files: vec![("prog.py", script.into())],
        bound_in: &["python3"],
    });
}

#[test]
fn python3_sees_the_hz3_lane() {
    // Resolves the symbol from inside the interpreter: the library answering is hz3 and the right lane.
    let probe = "import ctypes; f = ctypes.CDLL(None).hz3_lane; f.restype = ctypes.c_char_p; print(f().decode())";
    for lane in LANES {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-I", "-c", probe])
            .env("LD_PRELOAD", preload_lib(lane));
        let out = run(cmd);
        assert!(
            out.status.success(),
            "python3 hz3_lane probe under {lane}\n{}",
            describe(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), lane);
    }
}

#[test]
fn perl_hashes_and_sorts() {
    let script = r#"
use strict; use warnings; use Digest::MD5 qw(md5_hex);
my %h; my @list;
for my $i (1 .. 200000) { $h{"key$i"} = [$i, "v" x ($i % 40)]; push @list, $i * 7919 % 100003; }
my @sorted = sort { $a <=> $b } @list;
my $joined = join(",", map { "$_=" . scalar(@{$h{$_}}) . length($h{$_}[1]) } sort keys %h);
delete $h{"key$_"} for grep { $_ % 3 } 1 .. 200000;
print scalar(keys %h), " ", md5_hex($joined), " ", md5_hex(join(" ", @sorted)), "\n";
"#;
    same_output_under_both_lanes(Program {
        name: "perl",
        script: "perl prog.pl".into(),
        files: vec![("prog.pl", script.into())],
        bound_in: &["perl"],
    });
}

#[test]
fn git_init_commit_log() {
    // Fixed names and dates make the commit ids themselves part of the compared output.
    let script = r#"
git init -q -b main repo
cd repo
for i in 1 2 3 4 5; do
  seq 1 $((i * 2000)) > file$i.txt
  git add file$i.txt
  git commit -q -m "commit $i"
done
git log --format='%H %s'
git diff --stat HEAD~4 HEAD | tail -n 1
git gc -q
git fsck --strict 2>&1
git rev-list --count HEAD
"#;
    same_output_under_both_lanes(Program {
        name: "git",
        script: script.into(),
        files: vec![],
        bound_in: &["git"],
    });
}

/// A C file large enough to keep cc1 busy allocating: many functions with loops, switches and strings.
fn generated_c_source() -> String {
    let mut src = String::from("#include <stdio.h>\n#include <string.h>\n");
    for f in 0..300 {
        src.push_str(&format!(
            "static int f{f}(int x) {{\n  int acc = {f};\n  for (int i = 0; i < x % 17 + {f} % 5; i++) {{\n    \
             switch ((i + x) % 4) {{ case 0: acc += i * {f}; break; case 1: acc ^= x << (i % 7); break;\n    \
             case 2: acc -= (int)strlen(\"s{f}-%d\"); break; default: acc = acc * 31 + {f}; }}\n  }}\n  \
             return acc;\n}}\n"
        ));
    }
    src.push_str("int main(void) {\n  long total = 0;\n");
    for f in 0..300 {
        src.push_str(&format!("  total += f{f}({f} * 3 + 1);\n"));
    }
    src.push_str("  printf(\"%ld\\n\", total);\n  return 0;\n}\n");
    src
}

#[test]
fn gcc_compiles_and_runs() {
    // The assembly is compared byte for byte, then the linked program's output.
    same_output_under_both_lanes(Program {
        name: "gcc",
        script: "gcc -O2 -S -o - gen.c\ngcc -O2 -o gen gen.c\n./gen".into(),
        files: vec![("gen.c", generated_c_source())],
        bound_in: &["cc1", "gcc"],
    });
}

#[test]
fn sqlite3_generated_table() {
    let sql = r#"
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
  INSERT INTO t SELECT i, i % 97, printf('name-%08d', (i * 7919) % 200000), (i * 13 % 1000) / 7.0 FROM n;
CREATE INDEX t_name ON t(name);
SELECT grp, count(*), sum(val), min(name), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT count(DISTINCT name), group_concat(id, ',') FROM (SELECT * FROM t WHERE name LIKE 'name-0000%' ORDER BY name);
DELETE FROM t WHERE id % 3 = 0;
VACUUM;
SELECT count(*), total(val) FROM t;
PRAGMA integrity_check;
"#;
    same_output_under_both_lanes(Program {
        name: "sqlite3",
        script: "sqlite3 test.db < prog.sql".into(),
        files: vec![("prog.sql", sql.into())],
        bound_in: &["sqlite3"],
    });
}
