# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      VERSION = "0.1.0"
    end
  end
end
