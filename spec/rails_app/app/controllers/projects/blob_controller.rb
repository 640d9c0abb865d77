# frozen_string_literal: true

module Projects
  class BlobController < ApplicationController
    actions :show
  end
end
