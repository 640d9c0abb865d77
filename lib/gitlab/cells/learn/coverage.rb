# frozen_string_literal: true

# Being written: see the gem issue.
