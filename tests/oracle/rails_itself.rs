//! The oracle against Rails itself (needs ruby and actionpack).

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::corpus::*;
use crate::oracle::*;
use crate::paths::*;
use crate::properties::*;

/// Draws each table with Rails' routing DSL and asks `Journey::Router#find_routes`. Reads JSON
/// lines `{"routes": [...], "requests": [[method, [bytes]]...]}`; prints one JSON line per
/// table: the answers (`[route index or null, [[name, [bytes]]...]]`, or `"error:..."`), or
/// `"skip:..."` when the DSL cannot draw the table's specs as given.
pub(crate) const RAILS_SCRIPT: &str = r#"
require "json"
require "action_dispatch"
J = ActionDispatch::Journey
# Rails refuses anchors and the m option in requirements; the crate accepts them, so lift the
# check to compare what Journey does with them.
class ActionDispatch::Routing::Mapper::Mapping
  def verify_regexp_requirements(*) end
end
APP = ->(env) { [200, {}, [""]] }
STDIN.each_line do |line|
  t = JSON.parse(line)
  rs = ActionDispatch::Routing::RouteSet.new
  begin
    rs.draw do
      t["routes"].each_with_index do |r, i|
        reqs = r["requirements"].to_h do |k, v|
          [k.to_sym, v.key?("literal") ? Regexp.new(Regexp.escape(v["literal"])) : Regexp.new(v["source"], v["options"])]
        end
        via = r["verb"] == "" ? :all : r["verb"].split("|").map { |v| v.downcase.to_sym }
        if r["mounted"]
          mount APP, at: r["path"], via: via, as: "m#{i}", constraints: reqs
        else
          # The spec is complete (format included); format: false keeps it so, and the glob
          # default that format: false drops is given back.
          J::Parser.new.parse(r["path"]).each { |n| reqs[n.name.to_sym] ||= /.+?/ if n.star? }
          match r["path"], to: APP, via: via, format: false, constraints: reqs, as: nil
        end
      end
    end
  rescue => e
    puts JSON.generate("skip:draw #{e.class}: #{e.message[0, 100]}")
    next
  end
  drawn = rs.routes.map { |r| r.path.spec.to_s }.zip(t["routes"].map { |r| r["path"] }).find { |a, b| a != b }
  if drawn
    puts JSON.generate("skip:the DSL draws #{drawn[1]} as #{drawn[0]}")
    next
  end
  answers = t["requests"].map do |m, bytes|
    path = bytes.pack("C*").force_encoding(Encoding::ASCII_8BIT).split("?", 2)[0] || ""
    env = Rack::MockRequest.env_for("/")
    env["PATH_INFO"] = J::Router::Utils.normalize_path(path)
    env["REQUEST_METHOD"] = m
    begin
      found = rs.router.send(:find_routes, ActionDispatch::Request.new(env)).first
      found ? [rs.routes.to_a.index(found[2]), found[1].map { |k, v| [k.to_s, v.bytes] }] : [nil, []]
    rescue => e
      "error:#{e.class}: #{e.message[0, 100]}"
    end
  end
  puts JSON.generate(answers)
end
"#;

/// The oracle against Rails itself (Debian's actionpack 6.1 and ruby): the corpus table and
/// 600 random tables, 50 requests each, half of them ending in a newline; mounted routes,
/// anchors and the m option included.
#[test]
fn oracle_agrees_with_rails_itself() {
    use proptest::strategy::ValueTree;

    let pools = Pools::new();
    let mut runner = TestRunner::new(config(1));
    let tables = table_gen();
    let requests = prop::collection::vec((request_gen(pools.words.clone()), any::<bool>()), 50);
    let mut cases = Vec::new();
    let mut input = String::new();
    for k in 0..=600 {
        let defs = if k == 0 { gitlabish_routes() } else { pools.table(&tables.new_tree(&mut runner).unwrap().current()) };
        let specs: Vec<Vec<Spec>> = defs.iter().map(|d| parse_spec(&d.path).unwrap()).collect();
        let reqs: Vec<Req> = requests
            .new_tree(&mut runner)
            .unwrap()
            .current()
            .iter()
            .map(|(g, newline)| {
                let mut r = g.request(&defs, &specs, &pools.words);
                if *newline {
                    r.path.push(b'\n');
                }
                r
            })
            .collect();
        let routes: Vec<_> =
            defs.iter().map(|d| serde_json::json!({"verb": d.verb, "path": d.path, "requirements": d.requirements, "mounted": d.mounted})).collect();
        let requests: Vec<_> = reqs.iter().map(|r| serde_json::json!([r.method, r.path])).collect();
        input.push_str(&serde_json::json!({"routes": routes, "requests": requests}).to_string());
        input.push('\n');
        cases.push((defs, reqs));
    }

    let dir = std::env::temp_dir().join(format!("cells-learn-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rails.rb"), RAILS_SCRIPT).unwrap();
    std::fs::write(dir.join("tables.jsonl"), &input).unwrap();
    let out =
        std::process::Command::new("ruby").arg(dir.join("rails.rb")).stdin(std::fs::File::open(dir.join("tables.jsonl")).unwrap()).output().expect("ruby runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "ruby failed: {}", String::from_utf8_lossy(&out.stderr));
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.lines().count(), cases.len());

    let (mut compared, mut matched, mut skipped) = (0, 0, 0);
    let mut wrong = Vec::new();
    for (line, (defs, reqs)) in out.lines().zip(&cases) {
        let answers: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(answers) = answers.as_array() else {
            skipped += 1;
            continue;
        };
        let oracle = Oracle::new(defs).unwrap();
        for (r, a) in reqs.iter().zip(answers) {
            let rails: Result<Answer, String> = match a.as_str() {
                Some(e) => Err(e.to_string()),
                None => Ok(a[0].as_u64().map(|i| {
                    let params = a[1].as_array().unwrap().iter();
                    let params =
                        params.map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect()));
                    (i as usize, params.collect())
                })),
            };
            let ours = oracle.recognize(r.method, &r.path);
            compared += 1;
            matched += matches!(rails, Ok(Some(_))) as usize;
            if ours != rails && wrong.len() < 20 {
                wrong.push(format!("{r:?}\n  rails:  {}\n  oracle: {}\n  table:{}", ShowAnswer(&rails), ShowAnswer(&ours), describe(defs)));
            }
        }
    }
    assert!(skipped < cases.len() / 4, "{skipped} of {} tables could not be drawn", cases.len());
    assert!(matched > compared / 10, "only {matched} of {compared} requests matched a route");
    assert!(wrong.is_empty(), "the oracle differs from Rails:\n{}", wrong.join("\n"));
}
