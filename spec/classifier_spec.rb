# frozen_string_literal: true

require "objspace"

RSpec.describe Gitlab::Cells::Learn::Classifier do
  subject(:classifier) { described_class.new(routes: table) }

  let(:table) { File.read(File.join(CORPUS_DIR, "gitlabish-routes.json")) }
  let(:vectors) { File.readlines(File.join(CORPUS_DIR, "gitlabish-requests.jsonl")).map { |l| JSON.parse(l) } }
  # Two routes with dynamic constraints that both match "/gitlab-org".
  let(:dynamic) do
    described_class.new(routes: [
                          { "verb" => "GET", "path" => "/:group_id(.:format)", "dynamic_constraints" => true },
                          { "verb" => "GET", "path" => "/:username(.:format)", "dynamic_constraints" => true }
                        ])
  end

  it "recognizes every corpus vector as Rails did, route and params" do
    vectors.each do |v|
      found = classifier.recognize(v["method"], v["path"])
      expect(found&.route&.index).to eq(v["route_index"]), "#{v["method"]} #{v["path"]}"
      expect(found.params).to eq(v["params"]), "#{v["method"]} #{v["path"]}" if found
    end
  end

  it "answers the seed's examples" do
    result = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
    expect(result).to be_frozen
    expect(result.to_h(cell: "cell_0")).to eq("path" => "/gitlab-org/gitlab-test", "cell" => "cell_0", "source" => "routable")
    expect(result.entity).to eq(Gitlab::Cells::Learn::Entity.new(:route_path, "gitlab-org/gitlab-test"))
    expect(result.route.endpoint).to eq("projects/issues#index")

    profile = classifier.learn(:get, "/-/profile")
    expect(profile.to_h).to eq("path" => "/-/profile", "cell" => "cell_0", "source" => "fixed", "exact" => true)

    root = classifier.learn("GET", "/")
    expect(root).not_to be_cacheable
  end

  it "answers with a frozen Result whose path cannot be changed, equal to one built in Ruby" do
    result = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
    expect(result).to be_a(Gitlab::Cells::Learn::Result)
    expect(result.path).to be_frozen
    expect { result.path << "x" }.to raise_error(FrozenError)
    expect { result.instance_variable_set(:@values, []) }.to raise_error(FrozenError)
    built = Gitlab::Cells::Learn::Result.new(source: :routable, path: "/gitlab-org/gitlab-test", exact: false, cacheable: true,
                                             entity: result.entity, route: result.route)
    expect(result).to eq(built)
    expect(result.hash).to eq(built.hash)
    expect(result.entity.kind).to equal(:route_path)
    expect { result.class.new }.to raise_error(NotImplementedError, /only the native classifier/)
  end

  it "answers with one Ruby object per call, making its Strings frozen and once, when read" do
    requests = [["GET", "/gitlab-org/gitlab-test/-/issues"], ["GET", "/-/profile"], ["GET", "/"], ["GET", "/no/such/route/-/x"]]
    requests.each { |method, path| classifier.learn(method, path) }
    before = GC.stat(:total_allocated_objects)
    50.times { requests.each { |method, path| classifier.learn(method, path) } }
    # The Result itself, and at most a couple for the measuring loop (its block's environment).
    expect(GC.stat(:total_allocated_objects) - before).to be_between(50 * requests.size, (50 * requests.size) + 2)

    result = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
    expect(result.entity.key).to eq("gitlab-org/gitlab-test").and be_frozen
    expect(result.entity.key).to equal(result.entity.key)
    expect(result.path).to equal(result.path)
    expect(result.route).to equal(classifier.routes.fetch(result.route.index))
    path = -"/-/profile"
    expect(classifier.learn("GET", path).path).to equal(path)
  end

  it "keeps every live answer as it was while the storage of answers the GC freed is reused" do
    long = "/#{"a" * 150}/#{"b" * 150}/-/issues"
    churn = vectors.map { |v| [v["method"], v["path"]] } + [["GET", long], ["GET", "/-/profile"], ["GET", "/no/such/route/-/x"]]
    expected = ->(answer) { [answer.to_h(cell: "c"), answer.entity, answer.route&.index, answer.path.encoding, ObjectSpace.memsize_of(answer).positive?] }
    # Dead answers first, so that the kept ones below are built in storage freed by the GC.
    3.times do
      20.times { churn.each { |method, path| classifier.learn(method, path) } }
      GC.start
    end
    kept = churn.map { |method, path| [method, path, classifier.learn(method, path)] }
    3.times do
      20.times { churn.reverse_each { |method, path| classifier.learn(method, path) } }
      GC.start
    end
    kept.each do |method, path, answer|
      expect(expected.call(answer)).to eq(expected.call(classifier.learn(method, path))), "#{method} #{path}"
    end
    expect(kept.map { |_, _, answer| answer.path }).to eq(kept.map { |method, path, _| classifier.learn(method, path).path })
  end

  it "keeps answers intact from threads learning under a GC at every allocation" do
    requests = vectors.first(40).map { |v| [v["method"], v["path"]] }
    seen = ->(answer) { [answer.to_h(cell: "c"), answer.entity&.key, answer.path] }
    expected = requests.to_h { |method, path| [[method, path], seen.call(classifier.learn(method, path))] }
    kept = Queue.new
    begin
      GC.stress = true
      4.times.map do |t|
        Thread.new do
          requests.rotate(t * 10).each do |method, path|
            answer = classifier.learn(method, path)
            # Its Strings made now, from a box that may have been another answer's.
            answer.path
            answer.entity
            kept << [method, path, answer]
          end
        end
      end.each(&:join)
    ensure
      GC.stress = false
    end
    GC.start
    answers = Array.new(kept.size) { kept.pop }
    expect(answers.size).to eq(4 * requests.size)
    answers.each { |method, path, answer| expect(seen.call(answer)).to eq(expected.fetch([method, path])), "#{method} #{path}" }
  end

  it "gives the native answer itself for dup and clone, and refuses to marshal or unfreeze it, clearly" do
    result = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
    expect(result.dup).to equal(result)
    expect(result.clone).to equal(result)
    expect(result.clone.path).to eq("/gitlab-org/gitlab-test")
    expect { result.clone(freeze: false) }.to raise_error(ArgumentError, "can't unfreeze Gitlab::Cells::Learn::Result")
    expect { Marshal.dump(result) }.to raise_error(TypeError, /no _dump_data is defined/)
    # What an application keeps or sends is the answer's Hash (or its JSON).
    expect(Marshal.load(Marshal.dump(result.to_h(cell: "c")))).to eq(result.to_h(cell: "c"))
  end

  it "answers a UTF-8 path whatever the request String's encoding, leaving that String as it was" do
    ["/-/profile", "/gitlab-org/gitlab-test/-/issues", "/x/caf\u00e9/-/issues", "/caf\u00e9"].each do |path|
      [path.b, path.dup, path.dup.force_encoding(Encoding::US_ASCII), -path].each do |given|
        frozen = given.frozen?
        result = classifier.learn("GET", given)
        expect(result.path.encoding).to eq(Encoding::UTF_8), "#{given.encoding} #{path}"
        expect(result.path).to be_frozen
        expect(given.frozen?).to eq(frozen)
        expect(result.to_h(cell: "c")).to eq(classifier.learn("GET", path).to_h(cell: "c"))
      end
    end
    # Built in Ruby, a Result checks its symbols.
    expect { Gitlab::Cells::Learn::Result.new(source: :elsewhere, path: "/", exact: true, cacheable: false) }
      .to raise_error(ArgumentError, /unknown source :elsewhere/)
  end

  it "asks the block about dynamic constraints, in Rails' order" do
    %i[recognize learn].each do |call|
      asked = []
      answer = dynamic.public_send(call, "GET", "/gitlab-org") do |route, params|
        asked << [route.index, params]
        route.index == 1
      end
      expect(asked).to eq([[0, { "group_id" => "gitlab-org" }], [1, { "username" => "gitlab-org" }]]), call.to_s
      expect(answer.route.index).to eq(1)
      expect { dynamic.public_send(call, "GET", "/x") { raise ArgumentError, "lookup failed" } }.to raise_error(ArgumentError, "lookup failed")
    end
    expect(dynamic.matches("GET", "/x").map { |m| m.route.index }).to eq([0, 1])
  end

  describe "#learn, native for the common call" do
    let(:refusing_groups) do
      Class.new do
        attr_reader :asked

        def for(method, path_info)
          (@asked ||= []) << [method, path_info]
          ->(route, _params) { route.index != 0 }
        end
      end.new
    end

    it "takes (method, path_info) and an optional block, as a method of Classifier" do
      expect(described_class.instance_method(:learn).owner).to eq(described_class)
      expect(described_class.instance_method(:learn).arity).to eq(2)
      expect { classifier.learn("GET") }.to raise_error(ArgumentError, "wrong number of arguments (given 1, expected 2)")
      expect { classifier.learn("GET", "/", "x") }.to raise_error(ArgumentError, "wrong number of arguments (given 3, expected 2)")
      expect { classifier.learn_deciding_constraints("GET", "/", nil) }.to raise_error(NoMethodError, /private method/)
      expect(classifier.learn("GET", "/-/profile", &nil).to_h).to eq("path" => "/-/profile", "cell" => "cell_0", "source" => "fixed", "exact" => true)
    end

    it "asks the block (above), else the constraints, else nobody" do
      expect(dynamic.learn("GET", "/gitlab-org").route.index).to eq(0)

      constrained = dynamic.with_constraints(refusing_groups)
      expect(constrained.learn(:get, "/gitlab-org").route.index).to eq(1)
      expect(refusing_groups.asked).to eq([[:get, "/gitlab-org"]])
      expect(constrained.learn(:get, "/gitlab-org") { true }.route.index).to eq(0)
      expect(refusing_groups.asked.size).to eq(1)
      # The copy has its own native state: the original still has no constraints.
      expect(dynamic.learn("GET", "/gitlab-org").route.index).to eq(0)
      loaded = described_class.load(dynamic.dump, constraints: refusing_groups)
      expect(loaded.learn("GET", "/gitlab-org").route.index).to eq(1)
    end

    it "lets the block break out of it" do
      expect(dynamic.learn("GET", "/x") { break :broke }).to eq(:broke)
    end

    it "binds one Classifier's state to a native handle once" do
      native = classifier.instance_variable_get(:@native)
      expect { native.bind(false, nil, classifier.routes) }.to raise_error(ArgumentError, /bound to a Classifier already/)
    end
  end

  it "round-trips through dump and load" do
    loaded = described_class.load(classifier.dump)
    vectors.first(200).each do |v|
      expect(loaded.recognize(v["method"], v["path"])&.route&.index).to eq(v["route_index"])
    end
    expect(loaded.rules).to eq(classifier.rules)
  end

  describe "errors" do
    it "names the route, position and reason of a bad definition" do
      expect { described_class.new(routes: [{ "verb" => "GET", "path" => "/ok" }, { "verb" => "GET", "path" => "/a(/:b" }]) }
        .to raise_error(Gitlab::Cells::Learn::InvalidRouteError) { |e|
          expect([e.route_index, e.position, e.reason]).to eq([1, 2, "unbalanced '(' without ')'"])
        }
      # A back-reference compiles since issue 15 (Ruby's Regexp decides it); a malformed group does not.
      expect { described_class.new(routes: [{ "verb" => "GET", "path" => "/:id", "requirements" => { "id" => { "source" => "(?<x" } } }]) }
        .to raise_error(Gitlab::Cells::Learn::InvalidRouteError, /invalid group name/)
      expect { described_class.new(routes: "[{") }.to raise_error(Gitlab::Cells::Learn::InvalidRouteError, /JSON/)
      expect { described_class.new(routes: [], rules: { "default_cell" => "no spaces allowed" }) }
        .to raise_error(Gitlab::Cells::Learn::InvalidRulesError)
      expect { described_class.new(routes: [], engine: :quantum) }.to raise_error(ArgumentError, /engine/)
    end

    it "searches a table of plain routes by its segment tree alone, and refuses one asked for by name on any other" do
      plain = [{ "verb" => "GET", "path" => "/projects/:id" }, { "verb" => "POST", "path" => "/projects" }]
      expect(described_class.new(routes: plain).engine).to eq("segment_tree")
      expect(described_class.new(routes: plain, engine: :segment_tree).recognize("GET", "/projects/7").params).to eq("id" => "7")
      expect(described_class.new(routes: plain, engine: :dense).engine).to eq("dense")
      expect(described_class.new(routes: plain + [{ "verb" => "GET", "path" => "/users/:id(.:format)" }]).engine).to eq("segment_tree")
      globbed = plain + [{ "verb" => "GET", "path" => "/files/*path" }]
      expect(described_class.new(routes: globbed).engine).to eq("dense")
      expect { described_class.new(routes: globbed, engine: :segment_tree) }
        .to raise_error(Gitlab::Cells::Learn::InvalidRouteError, %r{route #2 \(/files/\*path\) is not plain}) { |e|
          expect(e.route_index).to eq(2)
        }
    end

    it "refuses bad requests with InvalidRequestError" do
      expect { classifier.learn("GE T", "/") }.to raise_error(Gitlab::Cells::Learn::InvalidRequestError, /method/)
      expect { classifier.learn("GET", nil) }.to raise_error(Gitlab::Cells::Learn::InvalidRequestError, /path_info/)
      expect { classifier.learn("GET", "/#{"a" * 9000}") }.to raise_error(Gitlab::Cells::Learn::PathTooLongError, /over the limit/)
      expect(Gitlab::Cells::Learn::PathTooLongError.ancestors).to include(Gitlab::Cells::Learn::InvalidRequestError)
      # Other refusals are not length errors, whatever their message says.
      expect { classifier.learn("GET over the limit", "/") }.to raise_error(Gitlab::Cells::Learn::InvalidRequestError) { |e|
        expect(e).not_to be_a(Gitlab::Cells::Learn::PathTooLongError)
      }
    end

    it "refuses foreign and corrupted artifacts" do
      expect { described_class.load("nope") }.to raise_error(Gitlab::Cells::Learn::CorruptArtifactError, /magic/)
      bytes = classifier.dump
      bytes.setbyte(bytes.bytesize - 7, bytes.getbyte(bytes.bytesize - 7) ^ 1)
      expect { described_class.load(bytes) }.to raise_error(Gitlab::Cells::Learn::CorruptArtifactError, /checksum/)
      expect { described_class.load(nil) }.to raise_error(Gitlab::Cells::Learn::CorruptArtifactError)
    end
  end

  describe "under Ruby threads and garbage collection" do
    let(:sample) { vectors.select { |v| v["route_index"] }.first(120) }
    let(:expected) { sample.map { |v| classifier.recognize(v["method"], v["path"])&.route&.index } }

    it "gives one shared classifier's answers to many threads at once" do
      expected # computed on one thread first
      answers = Array.new(8) do
        Thread.new { 20.times.map { sample.map { |v| classifier.recognize(v["method"], v["path"])&.route&.index } } }
      end.map(&:value)
      answers.each { |rounds| rounds.each { |round| expect(round).to eq(expected) } }
    end

    it "stays correct with GC.stress on during classify, dump and load" do
      subset = sample.first(4)
      GC.stress = true
      begin
        got = subset.map { |v| classifier.learn(v["method"], v["path"]).to_h(cell: "c") }
        small = described_class.new(routes: [{ "verb" => "GET", "path" => "/:a/*b(.:format)" }])
        reloaded = described_class.load(small.dump)
        recognized = reloaded.recognize("GET", "/x/y/z.json")
      ensure
        GC.stress = false
      end
      expect(got).to eq(subset.map { |v| classifier.learn(v["method"], v["path"]).to_h(cell: "c") })
      expect(recognized.params).to eq("a" => "x", "b" => "y/z", "format" => "json")
    end

    it "announces the Strings an answer makes once it is old (its type is write-barrier protected)" do
      # In a child process: a missed write barrier is a [BUG] abort in verify_internal_consistency.
      script = <<~RUBY
        require "gitlab/cells/learn"
        classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(#{File.join(CORPUS_DIR, "gitlabish-routes.json").inspect}))
        results = Array.new(20) { classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues") }
        4.times { GC.start(full_mark: false) }
        strings = results.map { |result| [result.path, result.entity.key] }
        GC.verify_internal_consistency
        print strings.uniq.inspect
      RUBY
      out, err, status = Open3.capture3(RbConfig.ruby, "-I", File.join(REPO_ROOT, "lib"), "-e", script)
      expect([status.success?, err[/\[BUG\].*|WB miss.*/]]).to eq([true, nil])
      expect(out).to eq([["/gitlab-org/gitlab-test", "gitlab-org/gitlab-test"]].inspect)
    end

    it "serves a forked child (a Puma cluster worker) with the parent's classifier and answers" do
      # Puma's workers fork after the app, and so the classifier, is loaded: the extension's own
      # allocator (mimalloc) must hand the child the parent's heap intact, answers made before the
      # fork included, and go on allocating in both.
      before = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
      reader, writer = IO.pipe
      pid = fork do
        reader.close
        small = described_class.new(routes: [{ "verb" => "GET", "path" => "/:a/*b(.:format)" }])
        child = [before.path, before.entity.key, sample.map { |v| classifier.recognize(v["method"], v["path"])&.route&.index },
                 small.recognize("GET", "/x/y/z.json").params, classifier.learn("GET", "/-/profile").to_h]
        writer.write(Marshal.dump(child))
        writer.close
        exit!(0)
      end
      writer.close
      from_child = Marshal.load(reader.read) # rubocop:disable Security/MarshalLoad -- our own child's data
      reader.close
      expect(Process.wait2(pid).last).to be_success
      expect(from_child).to eq(["/gitlab-org/gitlab-test", "gitlab-org/gitlab-test", expected, { "a" => "x", "b" => "y/z", "format" => "json" },
                                { "path" => "/-/profile", "cell" => "cell_0", "source" => "fixed", "exact" => true }])
      expect(classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues").path).to eq("/gitlab-org/gitlab-test")
    end

    it "lets other threads run while compiling (the GVL is released)" do
      # Ten copies (~2,000 routes, ~60 ms): long enough for the ticker to count past 5 if the GVL
      # is released (about one tick per 4 ms here), since three copies compile in ~15 ms on two
      # build threads and counted 3-7 ticks.
      big = JSON.parse(table) * 10
      ticks = 0
      ticker = Thread.new do
        loop do
          ticks += 1
          sleep 0.001
        end
      end
      described_class.new(routes: big.each_with_index.map { |r, i| r.merge("index" => i, "path" => "/v#{i % 10}#{r["path"]}") })
      ticker.kill
      expect(ticks).to be > 5
    end
  end
end
