# frozen_string_literal: true

RSpec.describe Gitlab::Cells::Learn::CacheHeader do
  let(:error) { Gitlab::Cells::Learn::InvalidHeaderError }
  let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }

  it "is named X-Gitlab-Cell-Cache and its error is a Learn::Error" do
    expect(described_class::NAME).to eq("X-Gitlab-Cell-Cache")
    expect(error.superclass).to eq(Gitlab::Cells::Learn::Error)
  end

  describe ".format" do
    it "writes path and cell, and exact when asked" do
      expect(described_class.format(path: "/gitlab-org/gitlab-test", cell: "cell_0")).to eq("path=/gitlab-org/gitlab-test; cell=cell_0")
      expect(described_class.format(path: "/-/profile", cell: "cell_0", exact: true)).to eq("path=/-/profile; cell=cell_0; exact")
      expect(described_class.format(path: "/", cell: "c.e-l_L9")).to eq("path=/; cell=c.e-l_L9")
    end

    it "percent-encodes every byte outside unreserved and /, with upper-case hex" do
      expect(described_class.format(path: "/Az09-._~/", cell: "c")).to eq("path=/Az09-._~/; cell=c")
      expect(described_class.format(path: "/a%2Fb", cell: "c")).to eq("path=/a%252Fb; cell=c")
      expect(described_class.format(path: "/a;b,c=d e", cell: "c")).to eq("path=/a%3Bb%2Cc%3Dd%20e; cell=c")
      expect(described_class.format(path: "/\t\n\x7f", cell: "c")).to eq("path=/%09%0A%7F; cell=c")
      expect(described_class.format(path: "/é:@+", cell: "c")).to eq("path=/%C3%A9%3A%40%2B; cell=c")
    end

    it "refuses what it cannot advertise" do
      expect { described_class.format(path: "gitlab-org", cell: "c") }
        .to raise_error(error, 'X-Gitlab-Cell-Cache path "gitlab-org" does not start with /')
      expect { described_class.format(path: nil, cell: "c") }.to raise_error(error, "X-Gitlab-Cell-Cache path must be a String, not NilClass")
      expect { described_class.format(path: "/\xFF", cell: "c") }.to raise_error(error, /path is not valid UTF-8/)
      expect { described_class.format(path: "/#{'a' * 8192}", cell: "c") }
        .to raise_error(error, "X-Gitlab-Cell-Cache path is 8193 bytes, over the limit of 8192")
      ["", "cell 0", "c;ell", "c" * 65, :cell_0, nil].each do |cell|
        expect { described_class.format(path: "/", cell: cell) }
          .to raise_error(error, "X-Gitlab-Cell-Cache: invalid cell name #{cell.inspect}: expected 1 to 64 of A-Z a-z 0-9 _ . -")
      end
      expect(described_class.format(path: "/#{'a' * 8191}", cell: "c" * 64)).to start_with("path=/aaa")
    end
  end

  describe ".parse" do
    it "reads what format writes into a frozen value" do
      value = described_class.parse("path=/-/profile; cell=cell_0; exact")
      expect(value).to be_frozen
      expect([value.path, value.cell, value.exact?]).to eq(["/-/profile", "cell_0", true])
      expect(value.path).to be_frozen
      expect(value.to_h).to eq(path: "/-/profile", cell: "cell_0", exact: true)
      expect(value.to_s).to eq("path=/-/profile; cell=cell_0; exact")
      expect(value).to eq(described_class::Value.new(path: "/-/profile", cell: "cell_0", exact: true))
      expect(value.hash).to eq(described_class::Value.new(path: "/-/profile", cell: "cell_0", exact: true).hash)
      expect(value).not_to eq(described_class::Value.new(path: "/-/profile", cell: "cell_0", exact: false))
      expect(value.inspect).to include('path="/-/profile"', 'cell="cell_0"', "exact")
    end

    it "decodes the path and accepts attributes in any order with optional whitespace" do
      value = described_class.parse("cell=cell_eu0 ;\tpath=/a%252Fb%20c%c3%a9 ")
      expect([value.path, value.cell, value.exact?]).to eq(["/a%2Fb cé", "cell_eu0", false])
      expect(value.path.encoding).to eq(Encoding::UTF_8)
      expect(described_class.parse("exact;path=/x;cell=c")).to be_exact
      expect(described_class.parse("path=%2Fa; cell=c").path).to eq("/a")
      expect { described_class.parse("path=/a\xC3; cell=c".b) }.to raise_error(error, /contains "\\xC3", which must be percent-encoded/)
    end

    {
      "path=/a; cell=c; foo=1" => 'X-Gitlab-Cell-Cache "path=/a; cell=c; foo=1" has an unknown attribute "foo"',
      "Path=/a; cell=c" => 'X-Gitlab-Cell-Cache "Path=/a; cell=c" has an unknown attribute "Path"',
      "path=/a; path=/b; cell=c" => 'X-Gitlab-Cell-Cache "path=/a; path=/b; cell=c" repeats the attribute path',
      "path=/a; cell=c; exact; exact" => 'X-Gitlab-Cell-Cache "path=/a; cell=c; exact; exact" repeats the attribute exact',
      "cell=c" => 'X-Gitlab-Cell-Cache "cell=c" has no path attribute',
      "path=/a" => 'X-Gitlab-Cell-Cache "path=/a" has no cell attribute',
      "" => "X-Gitlab-Cell-Cache is empty",
      " \t" => "X-Gitlab-Cell-Cache is empty",
      "path=/a; cell=c;" => 'X-Gitlab-Cell-Cache "path=/a; cell=c;" has an empty attribute',
      "path=/a;; cell=c" => 'X-Gitlab-Cell-Cache "path=/a;; cell=c" has an empty attribute',
      "path; cell=c" => 'X-Gitlab-Cell-Cache "path; cell=c": path needs a value (path=...)',
      "path=/a; cell=c; exact=true" => 'X-Gitlab-Cell-Cache "path=/a; cell=c; exact=true": exact takes no value',
      "path=/a%zz; cell=c" => 'X-Gitlab-Cell-Cache path "/a%zz" has a bad percent escape %zz',
      "path=/a%4; cell=c" => 'X-Gitlab-Cell-Cache path "/a%4" has a bad percent escape %4',
      "path=/a%; cell=c" => 'X-Gitlab-Cell-Cache path "/a%" has a bad percent escape %',
      "path=/a b; cell=c" => 'X-Gitlab-Cell-Cache path "/a b" contains " ", which must be percent-encoded',
      "path=/a,b; cell=c" => 'X-Gitlab-Cell-Cache path "/a,b" contains ",", which must be percent-encoded',
      "path=/é; cell=c" => 'X-Gitlab-Cell-Cache path "/é" contains "é", which must be percent-encoded',
      "path=/%FF; cell=c" => 'X-Gitlab-Cell-Cache path "/%FF" does not decode to valid UTF-8',
      "path=a; cell=c" => 'X-Gitlab-Cell-Cache path "a" does not start with /',
      "path=\xFF; cell=c" => 'X-Gitlab-Cell-Cache is not valid UTF-8: "path=\\xFF; cell=c"',
      "path=/a; cell=" => 'X-Gitlab-Cell-Cache: invalid cell name "": expected 1 to 64 of A-Z a-z 0-9 _ . -',
      "path=/a; cell=a/b" => 'X-Gitlab-Cell-Cache: invalid cell name "a/b": expected 1 to 64 of A-Z a-z 0-9 _ . -'
    }.each do |value, message|
      it "refuses #{value.inspect}" do
        expect { described_class.parse(value) }.to raise_error(error, message)
      end
    end

    it "refuses an over-long value and a non-String" do
      long = "path=/#{'%41' * 8300}; cell=c"
      expect { described_class.parse(long) }.to raise_error(error, "X-Gitlab-Cell-Cache is #{long.bytesize} bytes, over the limit of 24704")
      within = "path=/#{'%41' * 8192}; cell=c"
      expect { described_class.parse(within) }.to raise_error(error, "X-Gitlab-Cell-Cache path is 8193 bytes, over the limit of 8192")
      expect(described_class.parse("path=/#{'%41' * 8191}; cell=c").path.bytesize).to eq(8192)
      expect { described_class.parse(nil) }.to raise_error(error, "X-Gitlab-Cell-Cache must be a String, not NilClass")
    end
  end

  describe ".for_result" do
    it "advertises cacheable results and nothing for the others" do
      issues = classifier.classify("GET", "/gitlab-org/gitlab-test/-/issues")
      expect(described_class.for_result(issues, cell: "cell_1")).to eq("path=/gitlab-org/gitlab-test; cell=cell_1")
      profile = classifier.classify("GET", "/-/profile")
      expect(described_class.for_result(profile, cell: "cell_0")).to eq("path=/-/profile; cell=cell_0; exact")
      expect(described_class.for_result(classifier.classify("GET", "/"), cell: "cell_0")).to be_nil
      expect(described_class.for_result(classifier.classify("GET", "/dashboard"), cell: "cell_0")).to be_nil
      expect(described_class.for_result(classifier.classify("GET", "/api/v4/unknown"), cell: "cell_0")).to be_nil
    end

    it "refuses an invalid cell and skips paths too long to advertise" do
      issues = classifier.classify("GET", "/gitlab-org/gitlab-test/-/issues")
      expect { described_class.for_result(issues, cell: "no cell") }.to raise_error(error, /invalid cell name "no cell"/)
      long = Gitlab::Cells::Learn::Result.new(source: :fixed, path: "/#{'a' * 8192}", exact: true, cacheable: true)
      expect(described_class.for_result(long, cell: "cell_0")).to be_nil
    end
  end

  describe "round trip" do
    # Bytes a path may hold: unreserved, /, the separators the format must escape, controls, and
    # multi-byte UTF-8 characters.
    let(:alphabet) { [*"a".."z", *"A".."Z", *"0".."9", "-", ".", "_", "~", "/", "/", "%", ";", ",", "=", " ", "\t", "\n", "\0", "\x7f", "+", ":", "@", "?", "#", '"', "é", "☃", "𝄞"] }

    def random_path(rng, alphabet)
      "/#{Array.new(rng.rand(0..40)) { alphabet[rng.rand(alphabet.size)] }.join}"
    end

    it "parses back every formatted header, for 2,000 random paths" do
      rng = Random.new(20_241_128)
      2_000.times do
        path = random_path(rng, alphabet)
        cell = Array.new(rng.rand(1..64)) { [*"a".."z", *"A".."Z", *"0".."9", "_", ".", "-"].sample(random: rng) }.join
        exact = rng.rand(2).zero?
        value = described_class.format(path: path, cell: cell, exact: exact)
        expect(value).to match(/\Apath=[A-Za-z0-9\-._~\/%]+; cell=[A-Za-z0-9_.-]+(; exact)?\z/)
        parsed = described_class.parse(value)
        expect([parsed.path, parsed.cell, parsed.exact?]).to eq([path, cell, exact]), value
        expect(parsed.to_s).to eq(value)
      end
    end

    it "round-trips the prefix of every corpus request the classifier finds cacheable" do
      seen = 0
      File.foreach(File.join(CORPUS_DIR, "gitlabish-requests.jsonl")) do |line|
        vector = JSON.parse(line)
        result = classifier.classify(vector["method"], vector["path"])
        value = described_class.for_result(result, cell: "cell_1")
        next expect(result).not_to be_cacheable unless value

        seen += 1
        expect(described_class.parse(value).to_h).to eq(path: result.path, cell: "cell_1", exact: result.exact?)
      end
      expect(seen).to be > 300
    end

    it "either parses or raises InvalidHeaderError for 3,000 corrupted headers, nothing else" do
      rng = Random.new(7)
      noise = ["%", ";", "=", " ", "%G", "%4", "path=", "cell=", "exact", "\xFF".b, "é", ",", "/"]
      outcomes = Hash.new(0)
      3_000.times do
        value = described_class.format(path: random_path(rng, alphabet), cell: "cell_0", exact: rng.rand(2).zero?).b
        rng.rand(1..3).times do
          at = rng.rand(value.bytesize + 1)
          value = rng.rand(2).zero? ? value.byteslice(0, at) + noise.sample(random: rng).b + value.byteslice(at..) : value.byteslice(0, at) + (value.byteslice(at + 1..) || "")
        end
        value.force_encoding(Encoding::UTF_8)
        begin
          parsed = described_class.parse(value)
          expect(parsed.path).to start_with("/")
          outcomes[:parsed] += 1
        rescue Gitlab::Cells::Learn::InvalidHeaderError
          outcomes[:refused] += 1
        end
      end
      expect(outcomes[:parsed]).to be > 100
      expect(outcomes[:refused]).to be > 100
    end
  end
end
