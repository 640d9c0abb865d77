# frozen_string_literal: true

class RootController < ApplicationController
  actions :index
end
